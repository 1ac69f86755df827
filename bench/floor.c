/* The floor of the benchmark's job on one libvips: per image, only the work no way of making the
 * three renditions can skip, timed: one decode at the scale the largest preset needs (libjpeg's
 * shrink-on-load or libwebp's scaled decode, chosen by libvips' own thumbnail rule, so at the
 * same quality as thumbs and sharp), into memory, plus the three WebP q80 encodes of the
 * renditions. What lies between (colour to sRGB, orientation, the resizes, the attention crop)
 * is done untimed, the way thumbs does it (decode once, large from that, small from large, thumb
 * from small), so that the encoded pictures are thumbs' own and their bytes match.
 *
 * With --fast-shrink, JPEGs shrink on load by the whole power-of-two factor (2 for 1/3.7), as
 * sharp's default fastShrinkOnLoad does, instead of leaving a factor of two for the resize.
 *
 * Usage: floor --out DIR [--parallel N] [--fast-shrink] FILE...
 * Prints one JSON line per image: {"file", "ms" (decode + encodes), "decode_ms", "encode_ms",
 * "bytes"} or {"file", "error"}; first a line {"vips": VERSION}.
 * Built by scripts/bench/sharp-global.sh against the layer's libvips (Debian 13's 8.16.1) and run
 * through scripts/setup/libvips-run.sh trixie. */
#include <vips/vips.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* No bound (libvips' VIPS_MAX_COORD is a function call, not a constant). */
#define UNBOUNDED 10000000

static const struct preset {
	const char *name;
	int width, height;
	gboolean cover;
} PRESETS[] = {
	/* Largest first: each whole picture is derived from the one before (as thumbs does). */
	{ "large", 1080, UNBOUNDED, FALSE },
	{ "small", 480, UNBOUNDED, FALSE },
	{ "thumb", 150, 150, TRUE },
};
#define N_PRESETS (sizeof(PRESETS) / sizeof(PRESETS[0]))

static char **files;
static int n_files, next_file;
static const char *out_dir;
static gboolean fast_shrink;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static double
now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* The scale (<= 1) of the upright picture that every preset can be derived from. */
static double
needed_scale(int upright_width, int upright_height)
{
	double scale = 0.0;

	for (size_t i = 0; i < N_PRESETS; i++) {
		const struct preset *p = &PRESETS[i];
		double s = p->cover
			? VIPS_MAX((double) p->width / upright_width,
				  (double) p->height / upright_height)
			: VIPS_MIN((double) p->width / upright_width,
				  (double) p->height / upright_height);

		scale = VIPS_MAX(scale, s);
	}
	return VIPS_MIN(scale, 1.0);
}

/* Decode at the needed scale into memory: libvips' thumbnail rule (resample/thumbnail.c,
 * vips_thumbnail_open): JPEG shrinks 8/4/2 on load leaving at least a factor of two for the
 * resize; WebP decodes scaled to the target; other formats decode at full size. */
static VipsImage *
decode(const void *buf, size_t len)
{
	VipsImage *header, *loaded = NULL, *memory;
	const char *loader;
	int width, height, orientation;
	double shrink;

	if (!(header = vips_image_new_from_buffer(buf, len, "",
			  "access", VIPS_ACCESS_SEQUENTIAL, NULL)))
		return NULL;
	if (vips_image_get_string(header, VIPS_META_LOADER, &loader))
		loader = "";
	orientation = vips_image_get_orientation(header);
	width = orientation >= 5 ? header->Ysize : header->Xsize;
	height = orientation >= 5 ? header->Xsize : header->Ysize;
	shrink = 1.0 / needed_scale(width, height);
	if (vips_isprefix("jpegload", loader)) {
		/* libvips' rule leaves a factor of two for the resize; sharp's fast one does not,
		 * but halves a factor the whole shrink would equal (src/pipeline.cc, 0.34.2). */
		double s = fast_shrink ? shrink * 2 : shrink;
		int factor = s >= 16 ? 8 : s >= 8 ? 4 : s >= 4 ? 2 : 1;

		if (fast_shrink && factor > 1 && (int) shrink == factor)
			factor /= 2;

		vips_jpegload_buffer((void *) buf, len, &loaded, "shrink", factor,
			"access", VIPS_ACCESS_SEQUENTIAL, NULL);
	}
	else if (vips_isprefix("webpload", loader))
		vips_webpload_buffer((void *) buf, len, &loaded, "scale", 1.0 / shrink,
			"access", VIPS_ACCESS_SEQUENTIAL, NULL);
	else
		loaded = vips_image_new_from_buffer(buf, len, "",
			"access", VIPS_ACCESS_SEQUENTIAL, NULL);
	g_object_unref(header);
	if (!loaded)
		return NULL;
	memory = vips_image_copy_memory(loaded);
	g_object_unref(loaded);
	return memory;
}

/* The three renditions' pictures, as thumbs makes them (untimed). */
static int
renditions(const void *buf, size_t len, VipsImage *out[N_PRESETS])
{
	VipsImage *base, *from;
	int width, height;

	/* The base: libvips' thumbnail to the needed width (upright, sRGB), in memory. */
	{
		VipsImage *header = vips_image_new_from_buffer(buf, len, "", NULL);
		int orientation;
		VipsImage *t;

		if (!header)
			return -1;
		orientation = vips_image_get_orientation(header);
		width = orientation >= 5 ? header->Ysize : header->Xsize;
		height = orientation >= 5 ? header->Xsize : header->Ysize;
		g_object_unref(header);
		if (vips_thumbnail_buffer((void *) buf, len, &t,
				(int) ceil(width * needed_scale(width, height)),
				"height", VIPS_MAX_COORD, "size", VIPS_SIZE_DOWN, NULL))
			return -1;
		base = vips_image_copy_memory(t);
		g_object_unref(t);
		if (!base)
			return -1;
	}
	from = base;
	for (size_t i = 0; i < N_PRESETS; i++) {
		const struct preset *p = &PRESETS[i];
		VipsImage *t;

		out[i] = NULL;
		if (vips_thumbnail_image(from, &t, p->width, "height", p->height,
				"size", VIPS_SIZE_DOWN, "no_rotate", TRUE, "crop",
				p->cover ? VIPS_INTERESTING_ATTENTION : VIPS_INTERESTING_NONE,
				NULL))
			break;
		out[i] = vips_image_copy_memory(t);
		g_object_unref(t);
		if (!out[i])
			break;
		if (!p->cover)
			from = out[i];
	}
	g_object_unref(base);
	for (size_t i = 0; i < N_PRESETS; i++)
		if (!out[i]) {
			for (size_t j = 0; j < i; j++)
				g_object_unref(out[j]);
			return -1;
		}
	return 0;
}

static void
report_error(const char *file)
{
	char *text = g_strescape(vips_error_buffer(), "");

	for (char *c = text; *c; c++)
		if (*c == '"')
			*c = '\'';
	pthread_mutex_lock(&lock);
	printf("{\"file\": \"%s\", \"error\": \"%.300s\"}\n", file, text);
	fflush(stdout);
	pthread_mutex_unlock(&lock);
	g_free(text);
	vips_error_clear();
}

static void
one(const char *file, int index)
{
	gchar *buf;
	gsize len;
	VipsImage *decoded, *pictures[N_PRESETS];
	double t0, decode_ms, encode_ms = 0;
	size_t bytes = 0;
	char *dir;

	if (!g_file_get_contents(file, &buf, &len, NULL)) {
		vips_error("floor", "cannot read the file");
		report_error(file);
		return;
	}
	t0 = now_ms();
	decoded = decode(buf, len);
	decode_ms = now_ms() - t0;
	if (!decoded || renditions(buf, len, pictures)) {
		if (decoded)
			g_object_unref(decoded);
		report_error(file);
		g_free(buf);
		return;
	}
	g_object_unref(decoded);
	dir = g_strdup_printf("%s/%d-%s", out_dir, index, strrchr(file, '/') ? strrchr(file, '/') + 1 : file);
	g_mkdir_with_parents(dir, 0755);
	for (size_t i = 0; i < N_PRESETS; i++) {
		void *webp = NULL;
		size_t webp_len = 0;
		int failed;

		t0 = now_ms();
		failed = vips_webpsave_buffer(pictures[i], &webp, &webp_len, "Q", 80,
			"effort", 4, "keep", VIPS_FOREIGN_KEEP_NONE, NULL);
		encode_ms += now_ms() - t0;
		g_object_unref(pictures[i]);
		if (!failed) {
			char *path = g_strdup_printf("%s/%s.webp", dir, PRESETS[i].name);

			g_file_set_contents(path, webp, webp_len, NULL);
			g_free(path);
			bytes += webp_len;
		}
		g_free(webp);
		if (failed) {
			for (size_t j = i + 1; j < N_PRESETS; j++)
				g_object_unref(pictures[j]);
			report_error(file);
			g_free(dir);
			g_free(buf);
			return;
		}
	}
	pthread_mutex_lock(&lock);
	printf("{\"file\": \"%s\", \"ms\": %.3f, \"decode_ms\": %.3f, \"encode_ms\": %.3f, "
		   "\"bytes\": %zu}\n",
		file, decode_ms + encode_ms, decode_ms, encode_ms, bytes);
	fflush(stdout);
	pthread_mutex_unlock(&lock);
	g_free(dir);
	g_free(buf);
}

static void *
worker(void *unused)
{
	(void) unused;
	for (;;) {
		int i;

		pthread_mutex_lock(&lock);
		i = next_file < n_files ? next_file++ : -1;
		pthread_mutex_unlock(&lock);
		if (i < 0)
			break;
		one(files[i], i);
	}
	vips_thread_shutdown();
	return NULL;
}

int
main(int argc, char **argv)
{
	int parallel = 1;
	pthread_t *threads;

	if (VIPS_INIT(argv[0]))
		vips_error_exit(NULL);
	vips_cache_set_max(0);
	files = g_new0(char *, argc);
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--out") && i + 1 < argc)
			out_dir = argv[++i];
		else if (!strcmp(argv[i], "--parallel") && i + 1 < argc)
			parallel = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--fast-shrink"))
			fast_shrink = TRUE;
		else
			files[n_files++] = argv[i];
	}
	if (!out_dir || n_files == 0 || parallel < 1) {
		fprintf(stderr, "usage: floor --out DIR [--parallel N] [--fast-shrink] FILE...\n");
		return 2;
	}
	printf("{\"vips\": \"%s\"}\n", vips_version_string());
	threads = g_new(pthread_t, parallel);
	for (int i = 0; i < parallel; i++)
		pthread_create(&threads[i], NULL, worker, NULL);
	for (int i = 0; i < parallel; i++)
		pthread_join(threads[i], NULL);
	vips_shutdown();
	return 0;
}
