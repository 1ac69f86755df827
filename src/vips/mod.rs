//! The only unsafe code in the crate: a small safe layer over libvips' C API.
//!
//! We call libvips through the raw `libvips::bindings` module rather than the crate's typed
//! `ops::*_with_opts` API. The typed API is generated from libvips 8.18 and passes every option
//! by name, so on older libraries (Debian 12 ships 8.14) it fails at run time with
//! "no property named 'keep'". The raw calls take options as name/value varargs that the
//! installed libvips resolves, so we name only the options we need, and pick `strip` (before
//! 8.15) or `keep` (8.15 on) by the version found at run time.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::marker::PhantomData;
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;

use libvips::bindings as ffi;

/// An error reported by libvips, with the text of its error buffer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct VipsError(pub String);

pub type Result<T> = std::result::Result<T, VipsError>;

/// Pass as a width or height to mean "no limit on this side".
pub const UNBOUNDED: i32 = 10_000_000;

/// Initialise libvips once per process for service use: no operation cache (a long-running
/// process would otherwise keep decoded images alive) and untrusted loaders blocked.
pub fn init() {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        limit_malloc_arenas();
        let name = c"thumbs";
        // SAFETY: runs exactly once, before any other libvips call, with a valid C string.
        unsafe {
            if ffi::vips_init(name.as_ptr()) != 0 {
                panic!("libvips failed to start: {}", take_error());
            }
            ffi::vips_cache_set_max(0);
            ffi::vips_block_untrusted_set(1);
            // libvips' warnings (e.g. "error in tile" for a truncated file) would otherwise be
            // raw lines on stderr, breaking JSON logs: route them through tracing.
            ffi::g_log_set_handler(
                c"VIPS".as_ptr(),
                ffi::GLogLevelFlags_G_LOG_LEVEL_MASK,
                Some(forward_log),
                ptr::null_mut(),
            );
        }
    });
}

/// Receives libvips' GLib log messages.
unsafe extern "C" fn forward_log(
    _domain: *const c_char,
    level: ffi::GLogLevelFlags,
    message: *const c_char,
    _data: ffi::gpointer,
) {
    if message.is_null() {
        return;
    }
    // SAFETY: GLib passes a NUL-terminated message valid for the duration of the call.
    let message = unsafe { CStr::from_ptr(message) }.to_string_lossy();
    if level & (ffi::GLogLevelFlags_G_LOG_LEVEL_ERROR | ffi::GLogLevelFlags_G_LOG_LEVEL_CRITICAL)
        != 0
    {
        tracing::error!(target: "libvips", "{message}");
    } else if level & ffi::GLogLevelFlags_G_LOG_LEVEL_WARNING != 0 {
        tracing::warn!(target: "libvips", "{message}");
        // The first warning since the decode started names the cause; later ones ("error in
        // tile 0 x 0") only report the consequence.
        LAST_WARNING
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert_with(|| message.into_owned());
    } else {
        tracing::debug!(target: "libvips", "{message}");
    }
}

/// glibc gives each thread that allocates its own malloc arena. libvips' worker threads then
/// fragment several arenas, and peak memory over repeated large images grows by about 50 MB
/// (measured: an 18 MP JPEG rendered three times in one process peaked at 150 or 200 MB from
/// run to run; with two arenas at 149 MB every time, at the same speed).
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn mallopt(param: c_int, value: c_int) -> c_int;
        }
        const M_ARENA_MAX: c_int = -8;
        // SAFETY: mallopt only sets an allocator tuning value; called before libvips starts
        // any thread.
        unsafe { mallopt(M_ARENA_MAX, 2) };
    }
}

/// Library version as (major, minor, patch).
pub fn version() -> (i32, i32, i32) {
    init();
    // SAFETY: vips_version only reads static numbers.
    unsafe {
        (
            ffi::vips_version(0),
            ffi::vips_version(1),
            ffi::vips_version(2),
        )
    }
}

/// Set the number of threads libvips uses per image (0 = one per core).
pub fn set_concurrency(threads: usize) {
    init();
    // SAFETY: a plain setter of a global; valid at any time after init.
    unsafe { ffi::vips_concurrency_set(c_int::try_from(threads).unwrap_or(c_int::MAX)) }
}

/// Free libvips' per-thread buffers; call on a thread that used libvips before it exits
/// (tokio's blocking pool starts and ends threads as load comes and goes).
pub fn thread_shutdown() {
    // SAFETY: only frees the calling thread's libvips state; harmless if it has none.
    unsafe { ffi::vips_thread_shutdown() }
}

/// libvips keeps one error buffer for the whole process (libvips' iofuncs/error.c: "The error
/// buffer is global, that is, it is shared between all threads"; 8.14 to 8.18 offer nothing per
/// thread), loaders fail and warn on libvips' worker threads rather than the caller's, and we
/// keep one latest warning. So a failure's text is known to be its own only when no other job
/// used libvips meanwhile. Jobs run in parallel (shared side of this lock); a job whose result
/// quotes libvips and that overlapped another is run again alone (exclusive side), from a
/// cleared buffer, and that run's result is the answer: one image's shortage can then never be
/// read as another's corruption, at the cost of a second run for failures under concurrency.
static EXCLUSIVE: std::sync::RwLock<()> = std::sync::RwLock::new(());
/// Jobs on the shared side now, and ever started: a job ran alone when nobody was running as
/// it started, nobody started during it, and nobody else is running as it ends.
static RUNNING: AtomicUsize = AtomicUsize::new(0);
static STARTED: AtomicU64 = AtomicU64::new(0);

/// Leaves the count of running jobs however the job ends.
struct Running;

impl Drop for Running {
    fn drop(&mut self) {
        RUNNING.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Run `job` (a whole render: every libvips failure it reports must be its own) so that the
/// libvips text in its result is its own. `quotes_libvips` says whether a result carries
/// libvips' text (only those need a second, lone run when jobs overlapped).
pub fn with_own_messages<T>(job: impl Fn() -> T, quotes_libvips: impl Fn(&T) -> bool) -> T {
    init();
    {
        let _shared = EXCLUSIVE.read().unwrap_or_else(|e| e.into_inner());
        let others = RUNNING.fetch_add(1, Ordering::SeqCst);
        let running = Running;
        let ticket = STARTED.fetch_add(1, Ordering::SeqCst);
        if others == 0 {
            // Text left by work outside any job; if another job starts meanwhile, neither
            // counts as alone, so clearing here cannot lose a message that decides anything.
            clear_error();
            forget_warning();
        }
        let result = job();
        let alone = others == 0
            && STARTED.load(Ordering::SeqCst) == ticket + 1
            && RUNNING.load(Ordering::SeqCst) == 1;
        drop(running);
        if alone || !quotes_libvips(&result) {
            return result;
        }
    }
    let _exclusive = EXCLUSIVE.write().unwrap_or_else(|e| e.into_inner());
    clear_error();
    forget_warning();
    job()
}

/// The first libvips warning since a decode started. Some loaders give their real reason only
/// as a warning and fail with a generic error ("libpng read error") or none at all (libpng's
/// "IDAT: invalid distance too far back" under `fail_on=error`), so errors quote it. Loaders
/// warn from libvips' worker threads, so this cannot be per calling thread: it is a job's own
/// only as `with_own_messages` makes it.
static LAST_WARNING: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);

/// Forget the latest warning as a decode starts, so an earlier image's harmless warning
/// ("ignoring nclx profile") is never quoted as this one's reason.
fn forget_warning() {
    *LAST_WARNING.lock().unwrap_or_else(|e| e.into_inner()) = None;
}

/// Said when libvips gives neither an error nor a warning.
pub const NO_MESSAGE: &str = "libvips failed without a message";

/// Read and clear libvips' process-wide error buffer in one step (under libvips' lock), so
/// another thread's message is never cleared unread. Under concurrency the text may include
/// another failing image's message: `with_own_messages` decides whether it can be trusted.
fn take_error() -> String {
    // SAFETY: vips_error_buffer_copy returns a NUL-terminated g_malloc'd copy (never NULL) and
    // clears the buffer; we copy it into Rust and free it with g_free.
    let text = unsafe {
        let copy = ffi::vips_error_buffer_copy();
        let text = CStr::from_ptr(copy).to_string_lossy().trim().to_string();
        ffi::g_free(copy.cast());
        text
    };
    let warning = LAST_WARNING
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take();
    let warning = warning.map(|w| w.trim().replace('\n', "; "));
    match (text.is_empty(), warning) {
        (false, Some(warning)) if !text.contains(&warning) => {
            format!("{}; {warning}", text.replace('\n', "; "))
        }
        (false, _) => text.replace('\n', "; "),
        (true, Some(warning)) => warning,
        (true, None) => NO_MESSAGE.into(),
    }
}

/// Drop an error that is an answer, not a failure, leaving any pending warning for the
/// failure it may explain.
fn clear_error() {
    // SAFETY: clears libvips' error buffer under its own lock.
    unsafe { ffi::vips_error_clear() }
}

/// The loaders we call, one per accepted format. libvips is never asked to guess a format
/// from the bytes: its guess runs the sniffer of every loader it has, including ones we never
/// accept (on 8.14.1 a truncated 185-byte .svgz spins forever inside the SVG sniffer). The
/// format is decided by our own signature check, then its one loader reads the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loader {
    Jpeg,
    Png,
    Webp,
    Gif,
    Tiff,
    /// HEIC and AVIF (libheif).
    Heif,
}

/// The shape every `vips_*load_buffer` function shares.
type LoadBuffer =
    unsafe extern "C" fn(*mut c_void, ffi::size_t, *mut *mut ffi::VipsImage, ...) -> c_int;

impl Loader {
    fn function(self) -> LoadBuffer {
        match self {
            Loader::Jpeg => ffi::vips_jpegload_buffer,
            Loader::Png => ffi::vips_pngload_buffer,
            Loader::Webp => ffi::vips_webpload_buffer,
            Loader::Gif => ffi::vips_gifload_buffer,
            Loader::Tiff => ffi::vips_tiffload_buffer,
            Loader::Heif => ffi::vips_heifload_buffer,
        }
    }

    /// The name libvips records in an image's `vips-loader` field ("jpegload_buffer").
    pub fn name(self) -> &'static str {
        match self {
            Loader::Jpeg => "jpegload_buffer",
            Loader::Png => "pngload_buffer",
            Loader::Webp => "webpload_buffer",
            Loader::Gif => "gifload_buffer",
            Loader::Tiff => "tiffload_buffer",
            Loader::Heif => "heifload_buffer",
        }
    }
}

/// Whether libvips' HEIF sniff (heifload.c's `heif_magic`, the same list in 8.14 to 8.18) takes
/// these bytes: it knows the still-image brands but not `avis` (an AVIF image sequence, which
/// carries its first frame as the primary item), so `vips_thumbnail_buffer` handed animated AVIF
/// to ImageMagick, which is blocked ("operation is blocked").
fn libvips_sniffs_as_heif(bytes: &[u8]) -> bool {
    const BRANDS: [&[u8; 4]; 10] = [
        b"heic", b"heix", b"hevc", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1", b"avif",
    ];
    bytes.get(4..8) == Some(b"ftyp") && BRANDS.iter().any(|b| bytes.get(8..12) == Some(&b[..]))
}

/// What to write: the saver is chosen by suffix; options are the few we set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saver {
    Jpeg { quality: i32 },
    Webp { quality: i32 },
    Avif { quality: i32 },
}

/// How a loaded image will be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Any order (the image may be turned, cropped, read twice).
    Random,
    /// Once, top to bottom.
    Sequential,
}

/// A libvips image. `'buf` ties images that still read lazily from an input buffer to that
/// buffer (libvips does not copy it); `copy_memory` gives an independent `Image<'static>`.
pub struct Image<'buf> {
    ptr: NonNull<ffi::VipsImage>,
    _source: PhantomData<&'buf [u8]>,
}

// SAFETY: a VipsImage is a reference-counted GObject; libvips allows moving it between threads
// as long as one thread at a time uses it, which `&mut`-free, non-Sync `Image` guarantees.
unsafe impl Send for Image<'_> {}

impl Drop for Image<'_> {
    fn drop(&mut self) {
        // SAFETY: we own exactly one reference, taken when the image was created.
        unsafe { ffi::g_object_unref(self.ptr.as_ptr().cast()) }
    }
}

/// Fields that describe the camera, the place or the colour profile, rather than the pixels.
fn is_metadata(field: &str) -> bool {
    const PREFIXES: [&str; 6] = [
        "exif-",
        "xmp-",
        "iptc-",
        "icc-",
        "photoshop-",
        "orientation",
    ];
    PREFIXES.iter().any(|p| field.starts_with(p))
}

/// The crop strategy: attention-based for cover fits, none otherwise.
fn interesting(cover: bool) -> c_int {
    let strategy = if cover {
        ffi::VipsInteresting_VIPS_INTERESTING_ATTENTION
    } else {
        ffi::VipsInteresting_VIPS_INTERESTING_NONE
    };
    strategy as c_int
}

/// A call to `vips_thumbnail_buffer` or `vips_thumbnail_image` (its leading arguments given)
/// with the options every thumbnail of ours takes: fit `width` x `height`, never upscaling,
/// crop for `cover`, perceptual intent and, when `profile` is not NULL, export to sRGB; extra
/// name/value options go before those.
macro_rules! thumbnail_call {
    ($function:path, ($($lead:expr),+), ($width:expr, $height:expr, $cover:expr, $profile:expr)
     $(, $name:expr, $value:expr)*) => {
        $function(
            $($lead,)+
            $width,
            c"height".as_ptr(),
            $height,
            c"size".as_ptr(),
            ffi::VipsSize_VIPS_SIZE_DOWN as c_int,
            c"crop".as_ptr(),
            interesting($cover),
            $($name, $value,)*
            c"intent".as_ptr(),
            ffi::VipsIntent_VIPS_INTENT_PERCEPTUAL as c_int,
            $profile,
            c"srgb".as_ptr(),
            ptr::null::<c_char>(),
        )
    };
}

/// Wrap the out-pointer of a libvips call that returned `status`.
fn wrap<'b>(status: c_int, out: *mut ffi::VipsImage) -> Result<Image<'b>> {
    match NonNull::new(out) {
        Some(ptr) if status == 0 => Ok(Image {
            ptr,
            _source: PhantomData,
        }),
        Some(ptr) => {
            // SAFETY: a failed call may still have produced an image we own; release it.
            unsafe { ffi::g_object_unref(ptr.as_ptr().cast()) };
            Err(VipsError(take_error()))
        }
        None => Err(VipsError(take_error())),
    }
}

impl<'buf> Image<'buf> {
    /// Open an image lazily with `loader`: only the header is read, so this is cheap even for
    /// a file that declares billions of pixels. Used to check limits before any decoding.
    pub fn header(bytes: &'buf [u8], loader: Loader) -> Result<Image<'buf>> {
        Self::load(bytes, loader, Access::Sequential, 1)
    }

    /// Decode with shrink-on-load to fit inside `width` x `height` (never upscaling), with EXIF
    /// orientation applied; with `cover`, fill the box and crop the overflow (attention
    /// strategy). With `icc`, colour goes through the embedded ICC profile to sRGB; without,
    /// the pixels are taken as sRGB already (what an image without a profile means), which
    /// saves a colour-management round trip that costs ~8% of a render. `loader` is the one our
    /// signature check chose; libvips must have used it.
    pub fn thumbnail(
        bytes: &'buf [u8],
        loader: Loader,
        width: i32,
        height: i32,
        cover: bool,
        icc: bool,
    ) -> Result<Image<'buf>> {
        init();
        forget_warning();
        let mut out: *mut ffi::VipsImage = ptr::null_mut();
        // A NULL option name ends the list, so this drops the last option when `icc` is false.
        let export_profile = if icc {
            c"export_profile".as_ptr()
        } else {
            ptr::null()
        };
        // libvips' thumbnail takes a TIFF's later pages for smaller levels of a pyramid when
        // their sizes fit, and reads one of them instead: a half-size second page (a scan's
        // preview, another picture) came out in place of the first. An upload is its first
        // page: read that alone (TIFF has no shrink-on-load to lose, beyond pyramids). Bytes
        // libvips' own sniff would give to another loader (an animated AVIF) are read the
        // same way, by our loader.
        let by_our_loader = match loader {
            Loader::Tiff => Self::header(bytes, loader)?
                .get_int("n-pages")
                .is_some_and(|pages| pages > 1),
            Loader::Heif => !libvips_sniffs_as_heif(bytes),
            _ => false,
        };
        if by_our_loader {
            let page = Self::load(bytes, loader, Access::Sequential, 1)?;
            // SAFETY: valid input image; the option list is NULL-terminated.
            let status = unsafe {
                thumbnail_call!(
                    ffi::vips_thumbnail_image,
                    (page.raw(), &mut out),
                    (width, height, cover, export_profile)
                )
            };
            return wrap(status, out);
        }
        // SAFETY: the slice outlives the image (lifetime 'buf) and libvips never writes through
        // the pointer; the option list is NULL-terminated. `fail_on` must reach the loader
        // through `option_string`: thumbnail_buffer ignores its own fail_on argument, and a
        // truncated JPEG would otherwise render half grey.
        let status = unsafe {
            thumbnail_call!(
                ffi::vips_thumbnail_buffer,
                (
                    bytes.as_ptr() as *mut c_void,
                    bytes.len() as ffi::size_t,
                    &mut out
                ),
                (width, height, cover, export_profile),
                c"option_string".as_ptr(),
                c"fail_on=error".as_ptr()
            )
        };
        let image = wrap(status, out)?;
        // thumbnail_buffer picks its loader from the bytes itself; they passed our signature
        // check, so it must be the one that check chose, or the bytes are not what they seem.
        match image.get_string("vips-loader") {
            Some(used) if used != loader.name() => Err(VipsError(format!(
                "the file is not the format its first bytes say; libvips read it with {used}"
            ))),
            _ => Ok(image),
        }
    }

    /// Open any image libvips can read, letting libvips pick the loader from the bytes: for
    /// reading back our own renditions (tests, tools), never for uploads (see `Loader`).
    pub fn decode(bytes: &'buf [u8]) -> Result<Image<'buf>> {
        init();
        // SAFETY: the slice outlives the image (lifetime 'buf); the option list is NULL-terminated.
        let out = unsafe {
            ffi::vips_image_new_from_buffer(
                bytes.as_ptr().cast(),
                bytes.len() as ffi::size_t,
                c"fail_on=error".as_ptr(),
                ptr::null::<c_char>(),
            )
        };
        wrap(0, out)
    }

    /// Open an image with `loader` for a decode that fails on the first error (a truncated
    /// file is an error, not a half-grey picture); pixels are read when an operation needs
    /// them. `Access::Sequential` reads once from top to bottom: a large strip-based TIFF then
    /// streams through a shrink instead of being held whole. A JPEG `shrink` of 2, 4 or 8
    /// lets libjpeg shrink while decoding: far less work and memory than full size.
    pub fn load(
        bytes: &'buf [u8],
        loader: Loader,
        access: Access,
        shrink: u32,
    ) -> Result<Image<'buf>> {
        init();
        forget_warning();
        let access = match access {
            Access::Random => ffi::VipsAccess_VIPS_ACCESS_RANDOM,
            Access::Sequential => ffi::VipsAccess_VIPS_ACCESS_SEQUENTIAL,
        } as c_int;
        // Only libjpeg shrinks while decoding; a NULL option name ends the list early.
        let shrink_option = if loader == Loader::Jpeg && shrink > 1 {
            c"shrink".as_ptr()
        } else {
            ptr::null()
        };
        let shrink = match shrink {
            8.. => 8,
            4..=7 => 4,
            2 | 3 => 2,
            _ => 1,
        };
        let mut out: *mut ffi::VipsImage = ptr::null_mut();
        // SAFETY: the slice outlives the image (lifetime 'buf) and libvips never writes through
        // the pointer; the option list is NULL-terminated.
        let status = unsafe {
            (loader.function())(
                bytes.as_ptr() as *mut c_void,
                bytes.len() as ffi::size_t,
                &mut out,
                c"access".as_ptr(),
                access,
                c"fail_on".as_ptr(),
                ffi::VipsFailOn_VIPS_FAIL_ON_ERROR as c_int,
                shrink_option,
                shrink as c_int,
                ptr::null::<c_char>(),
            )
        };
        wrap(status, out)
    }

    /// Convert to sRGB through the embedded ICC profile (or, when there is none, libvips'
    /// built-in CMYK profile, named here so the default is stated, not implied), with the
    /// perceptual intent and black-point compensation for both: what Photoshop, sharp and
    /// LittleCMS' own tools do for CMYK, so blacks stay black (the relative intent without
    /// compensation lifts a CMYK photo's darkest pixel to about 33). Used for CMYK, where
    /// libvips 8.14's thumbnail refuses some valid embedded profiles ("profile incompatible
    /// with image") and silently uses its fallback instead.
    pub fn icc_to_srgb(&self) -> Result<Image<'buf>> {
        let mut out = ptr::null_mut();
        // SAFETY: valid input; NULL-terminated option list.
        let status = unsafe {
            ffi::vips_icc_transform(
                self.raw(),
                &mut out,
                c"srgb".as_ptr(),
                c"embedded".as_ptr(),
                1 as c_int,
                c"input_profile".as_ptr(),
                c"cmyk".as_ptr(),
                c"intent".as_ptr(),
                ffi::VipsIntent_VIPS_INTENT_PERCEPTUAL as c_int,
                c"black_point_compensation".as_ptr(),
                1 as c_int,
                ptr::null::<c_char>(),
            )
        };
        wrap(status, out)
    }

    /// Shrink by `scale` (<= 1) with no colour handling at all: for CMYK pixels, which are
    /// shrunk before the (costly) conversion to sRGB. Streams, so a sequentially opened
    /// image is read once, top to bottom.
    pub fn scale(&self, scale: f64) -> Result<Image<'buf>> {
        let mut out = ptr::null_mut();
        // SAFETY: valid input; NULL-terminated option list.
        let status =
            unsafe { ffi::vips_resize(self.raw(), &mut out, scale, ptr::null::<c_char>()) };
        wrap(status, out)
    }

    /// The first `n` bands (e.g. RGB and alpha of an image with extra channels).
    pub fn first_bands(&self, n: u32) -> Result<Image<'buf>> {
        let mut out = ptr::null_mut();
        // SAFETY: valid input; NULL-terminated option list.
        let status = unsafe {
            ffi::vips_extract_band(
                self.raw(),
                &mut out,
                0,
                c"n".as_ptr(),
                n as c_int,
                ptr::null::<c_char>(),
            )
        };
        wrap(status, out)
    }

    /// Apply the EXIF orientation to the pixels.
    pub fn autorot(&self) -> Result<Image<'buf>> {
        let mut out = ptr::null_mut();
        // SAFETY: valid input; NULL-terminated option list.
        let status = unsafe { ffi::vips_autorot(self.raw(), &mut out, ptr::null::<c_char>()) };
        wrap(status, out)
    }

    /// True when the EXIF orientation (5-8) turns the stored picture a quarter.
    pub fn is_turned(&self) -> bool {
        matches!(self.get_int("orientation"), Some(5..=8))
    }

    pub fn is_cmyk(&self) -> bool {
        // SAFETY: reads fields of a live image.
        let interpretation = unsafe { ffi::vips_image_guess_interpretation(self.raw()) };
        interpretation == ffi::VipsInterpretation_VIPS_INTERPRETATION_CMYK
    }

    fn raw(&self) -> *mut ffi::VipsImage {
        self.ptr.as_ptr()
    }

    pub fn width(&self) -> u32 {
        // SAFETY: reads a field of a live image.
        unsafe { ffi::vips_image_get_width(self.raw()) }.max(0) as u32
    }

    pub fn height(&self) -> u32 {
        // SAFETY: reads a field of a live image.
        unsafe { ffi::vips_image_get_height(self.raw()) }.max(0) as u32
    }

    pub fn bands(&self) -> u32 {
        // SAFETY: reads a field of a live image.
        unsafe { ffi::vips_image_get_bands(self.raw()) }.max(0) as u32
    }

    pub fn has_alpha(&self) -> bool {
        // SAFETY: reads fields of a live image.
        unsafe { ffi::vips_image_hasalpha(self.raw()) != 0 }
    }

    /// True for 16-bit (or wider) pixel formats.
    pub fn is_high_depth(&self) -> bool {
        // SAFETY: reads a field of a live image.
        let format = unsafe { ffi::vips_image_get_format(self.raw()) };
        format != ffi::VipsBandFormat_VIPS_FORMAT_UCHAR
            && format != ffi::VipsBandFormat_VIPS_FORMAT_CHAR
    }

    /// True for 32-bit integer, float or double pixels: unlike 8 and 16 bits, no colour space
    /// says how their values map to 8 bits (scientific and HDR TIFFs use any range).
    pub fn is_wide(&self) -> bool {
        // SAFETY: reads a field of a live image.
        let format = unsafe { ffi::vips_image_get_format(self.raw()) };
        [
            ffi::VipsBandFormat_VIPS_FORMAT_INT,
            ffi::VipsBandFormat_VIPS_FORMAT_UINT,
            ffi::VipsBandFormat_VIPS_FORMAT_FLOAT,
            ffi::VipsBandFormat_VIPS_FORMAT_DOUBLE,
        ]
        .contains(&format)
    }

    /// 32-bit integer or float pixels (`is_wide`) brought to 8 bits the way libvips' own
    /// `vips scale` shows them: from the darkest value to the brightest, linearly; values
    /// already within 0..1 (float) or 0..255 are kept on that scale instead of stretched, so a
    /// plain picture stored wide is not brightened. The result is B_W or sRGB by band count.
    /// Reads the pixels three times, so call it on a shrunk image: it is held in memory first.
    pub fn wide_to_8bit(&self) -> Result<Image<'buf>> {
        let whole = self.copy_memory()?;
        let (mut min, mut max) = (0f64, 0f64);
        // SAFETY: valid input; each writes one double; NULL-terminated option lists.
        let status = unsafe {
            ffi::vips_min(whole.raw(), &mut min, ptr::null::<c_char>())
                | ffi::vips_max(whole.raw(), &mut max, ptr::null::<c_char>())
        };
        if status != 0 {
            return Err(VipsError(take_error()));
        }
        // SAFETY: reads a field of a live image.
        let format = unsafe { ffi::vips_image_get_format(whole.raw()) };
        let float = format == ffi::VipsBandFormat_VIPS_FORMAT_FLOAT
            || format == ffi::VipsBandFormat_VIPS_FORMAT_DOUBLE;
        let (scale, offset) = if float && min >= 0.0 && max <= 1.0 {
            (255.0, 0.0)
        } else if min >= 0.0 && max <= 255.0 {
            (1.0, 0.0)
        } else if max > min {
            (255.0 / (max - min), -min * 255.0 / (max - min))
        } else {
            (0.0, 0.0) // one value everywhere: black
        };
        let mut linear = ptr::null_mut();
        // SAFETY: valid input; NULL-terminated option list.
        let linear = wrap(
            unsafe {
                ffi::vips_linear1(
                    whole.raw(),
                    &mut linear,
                    scale,
                    offset,
                    ptr::null::<c_char>(),
                )
            },
            linear,
        )?;
        let mut uchar = ptr::null_mut();
        // SAFETY: valid input; NULL-terminated option list.
        let uchar = wrap(
            unsafe {
                ffi::vips_cast(
                    linear.raw(),
                    &mut uchar,
                    ffi::VipsBandFormat_VIPS_FORMAT_UCHAR,
                    ptr::null::<c_char>(),
                )
            },
            uchar,
        )?;
        uchar.labelled_8bit()
    }

    /// True when the pixels are one-band (plus alpha) greyscale.
    pub fn is_grey(&self) -> bool {
        // SAFETY: reads fields of a live image.
        let interpretation = unsafe { ffi::vips_image_guess_interpretation(self.raw()) };
        interpretation == ffi::VipsInterpretation_VIPS_INTERPRETATION_B_W
            || interpretation == ffi::VipsInterpretation_VIPS_INTERPRETATION_GREY16
    }

    /// A metadata field as an integer, if present.
    pub fn get_int(&self, name: &str) -> Option<i32> {
        let name = CString::new(name).ok()?;
        let mut value: c_int = 0;
        // SAFETY: valid image and C string; libvips writes one int on success.
        let status = unsafe { ffi::vips_image_get_int(self.raw(), name.as_ptr(), &mut value) };
        if status == 0 {
            Some(value)
        } else {
            clear_error();
            None
        }
    }

    /// Whether a metadata field (EXIF, XMP, ICC profile, ...) is attached.
    pub fn has_field(&self, name: &str) -> bool {
        let Ok(name) = CString::new(name) else {
            return false;
        };
        // SAFETY: vips_image_get_typeof only inspects the image's metadata table.
        unsafe { ffi::vips_image_get_typeof(self.raw(), name.as_ptr()) != 0 }
    }

    /// A metadata field as a string, if present.
    pub fn get_string(&self, name: &str) -> Option<String> {
        if !self.has_field(name) {
            return None;
        }
        let name = CString::new(name).ok()?;
        let mut value: *const c_char = ptr::null();
        // SAFETY: valid image and C string; the returned string is owned by the image and we
        // copy it at once.
        let status = unsafe { ffi::vips_image_get_string(self.raw(), name.as_ptr(), &mut value) };
        if status != 0 || value.is_null() {
            clear_error();
            return None;
        }
        // SAFETY: non-null, NUL-terminated, alive while self is.
        Some(
            unsafe { CStr::from_ptr(value) }
                .to_string_lossy()
                .into_owned(),
        )
    }

    /// Shrink an already decoded image to fit `width` x `height` (never upscaling); with
    /// `cover`, fill the box exactly and crop what spills over, keeping the most interesting
    /// part (libvips' attention strategy).
    pub fn resize(&self, width: i32, height: i32, cover: bool) -> Result<Image<'buf>> {
        let mut out = ptr::null_mut();
        // SAFETY: valid input image; NULL-terminated option list. Orientation was applied when
        // decoding, so no_rotate keeps it from being applied twice.
        let status = unsafe {
            ffi::vips_thumbnail_image(
                self.raw(),
                &mut out,
                width,
                c"height".as_ptr(),
                height,
                c"size".as_ptr(),
                ffi::VipsSize_VIPS_SIZE_DOWN as c_int,
                c"crop".as_ptr(),
                interesting(cover),
                c"no_rotate".as_ptr(),
                1 as c_int,
                ptr::null::<c_char>(),
            )
        };
        wrap(status, out)
    }

    /// Render the (lazy) pipeline into memory so the result can be read several times and no
    /// longer depends on the input buffer.
    pub fn copy_memory(&self) -> Result<Image<'static>> {
        // SAFETY: valid input; returns a new reference we own, or NULL on error.
        let out = unsafe { ffi::vips_image_copy_memory(self.raw()) };
        wrap(0, out)
    }

    /// Convert to 8 bits per band, as sRGB or (for greyscale) B_W, keeping alpha.
    pub fn to_8bit(&self) -> Result<Image<'buf>> {
        let space = if self.is_grey() {
            ffi::VipsInterpretation_VIPS_INTERPRETATION_B_W
        } else {
            ffi::VipsInterpretation_VIPS_INTERPRETATION_sRGB
        };
        let mut out = ptr::null_mut();
        // SAFETY: valid input; NULL-terminated option list.
        let status =
            unsafe { ffi::vips_colourspace(self.raw(), &mut out, space, ptr::null::<c_char>()) };
        wrap(status, out)
    }

    /// Convert to 8-bit sRGB with an alpha band (opaque where there was none).
    pub fn to_srgba(&self) -> Result<Image<'buf>> {
        let mut srgb = ptr::null_mut();
        // SAFETY: valid input; NULL-terminated option list.
        let status = unsafe {
            ffi::vips_colourspace(
                self.raw(),
                &mut srgb,
                ffi::VipsInterpretation_VIPS_INTERPRETATION_sRGB,
                ptr::null::<c_char>(),
            )
        };
        let srgb = wrap(status, srgb)?;
        if srgb.bands() == 4 {
            return Ok(srgb);
        }
        let mut out = ptr::null_mut();
        // SAFETY: valid input; NULL-terminated option list.
        let status = unsafe {
            ffi::vips_bandjoin_const1(srgb.raw(), &mut out, 255.0, ptr::null::<c_char>())
        };
        wrap(status, out)
    }

    /// Zero the colour of fully transparent pixels. Editors leave colour there, invisible;
    /// libvips zeroes it only when it resizes (premultiplied), so a rendition at the original's
    /// size kept it and WebP stored it (a 600x400 test picture's WebP: 4970 bytes with noise
    /// under its transparent corners, 2738 with black there).
    pub fn clear_hidden_colour(&self) -> Result<Image<'buf>> {
        if !self.has_alpha() {
            // SAFETY: a new reference to the same live image, released by the returned Image.
            unsafe { ffi::g_object_ref(self.raw().cast()) };
            return wrap(0, self.raw());
        }
        let (mut alpha, mut visible, mut black, mut out) = (
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
            ptr::null_mut(),
        );
        // SAFETY: valid input; NULL-terminated option lists; each intermediate is wrapped at
        // once, so it is released whatever happens next.
        let alpha = wrap(
            unsafe {
                ffi::vips_extract_band(
                    self.raw(),
                    &mut alpha,
                    self.bands() as c_int - 1,
                    ptr::null::<c_char>(),
                )
            },
            alpha,
        )?;
        // SAFETY: as above.
        let visible: Image = wrap(
            unsafe {
                ffi::vips_relational_const1(
                    alpha.raw(),
                    &mut visible,
                    ffi::VipsOperationRelational_VIPS_OPERATION_RELATIONAL_MORE,
                    0.0,
                    ptr::null::<c_char>(),
                )
            },
            visible,
        )?;
        // SAFETY: as above.
        let black: Image = wrap(
            unsafe {
                ffi::vips_black(
                    &mut black,
                    self.width() as c_int,
                    self.height() as c_int,
                    c"bands".as_ptr(),
                    self.bands() as c_int,
                    ptr::null::<c_char>(),
                )
            },
            black,
        )?;
        // SAFETY: as above. The output takes its header (interpretation, uchar) from `self`.
        let status = unsafe {
            ffi::vips_ifthenelse(
                visible.raw(),
                self.raw(),
                black.raw(),
                &mut out,
                ptr::null::<c_char>(),
            )
        };
        wrap(status, out)
    }

    /// Composite the alpha band onto white and drop it (for formats without alpha).
    pub fn flatten_white(&self) -> Result<Image<'buf>> {
        let white = [255.0f64; 3];
        // SAFETY: copies three doubles into a new refcounted array we release below.
        let background = unsafe { ffi::vips_array_double_new(white.as_ptr(), 3) };
        let mut out = ptr::null_mut();
        // SAFETY: valid input and array; NULL-terminated option list. flatten takes its own
        // reference to the array, so we drop ours after the call.
        let status = unsafe {
            let status = ffi::vips_flatten(
                self.raw(),
                &mut out,
                c"background".as_ptr(),
                background,
                ptr::null::<c_char>(),
            );
            ffi::vips_area_unref(background.cast());
            status
        };
        wrap(status, out)
    }

    /// A copy without EXIF, XMP, IPTC or ICC metadata. Needed beyond the savers' own
    /// `strip`: Debian's libvips 8.14.1 webpsave ignores `strip` and writes EXIF and ICC.
    pub fn without_metadata(&self) -> Result<Image<'buf>> {
        let mut out = ptr::null_mut();
        // SAFETY: valid input; NULL-terminated option list.
        let status = unsafe { ffi::vips_copy(self.raw(), &mut out, ptr::null::<c_char>()) };
        let copy: Image<'buf> = wrap(status, out)?;
        // SAFETY: get_fields returns a NULL-terminated array of owned strings that we free with
        // g_strfreev after use; removing fields of our own fresh copy is allowed.
        unsafe {
            let fields = ffi::vips_image_get_fields(copy.raw());
            if !fields.is_null() {
                let mut i = 0;
                while !(*fields.add(i)).is_null() {
                    let name = *fields.add(i);
                    let text = CStr::from_ptr(name).to_string_lossy();
                    if is_metadata(&text) {
                        ffi::vips_image_remove(copy.raw(), name);
                    }
                    i += 1;
                }
                ffi::g_strfreev(fields);
            }
        }
        Ok(copy)
    }

    /// Encode with no metadata kept (no EXIF, GPS, XMP or ICC in the output).
    pub fn save(&self, saver: Saver) -> Result<Vec<u8>> {
        // `strip` became `keep` in 8.15; we talk to both.
        let (major, minor, _) = version();
        let (no_metadata, no_metadata_value): (&CStr, c_int) = if (major, minor) >= (8, 15) {
            (c"keep", 0) // VIPS_FOREIGN_KEEP_NONE
        } else {
            (c"strip", 1)
        };
        // One option per saver beyond quality: AVIF needs its codec named (the suffix alone
        // means HEVC on some versions); the others get their defaults spelt out.
        let (suffix, quality, option, value): (&CStr, i32, &CStr, c_int) = match saver {
            Saver::Jpeg { quality } => (c".jpg", quality, c"optimize_coding", 1),
            Saver::Webp { quality } => (c".webp", quality, c"effort", 4),
            Saver::Avif { quality } => (
                c".avif",
                quality,
                c"compression",
                ffi::VipsForeignHeifCompression_VIPS_FOREIGN_HEIF_COMPRESSION_AV1 as c_int,
            ),
        };
        let mut buf: *mut c_void = ptr::null_mut();
        let mut len: ffi::size_t = 0;
        // SAFETY: valid image, out-pointers to locals, NULL-terminated option list.
        let status = unsafe {
            ffi::vips_image_write_to_buffer(
                self.raw(),
                suffix.as_ptr(),
                &mut buf,
                &mut len,
                c"Q".as_ptr(),
                quality as c_int,
                option.as_ptr(),
                value,
                no_metadata.as_ptr(),
                no_metadata_value,
                ptr::null::<c_char>(),
            )
        };
        if status != 0 {
            return Err(VipsError(take_error()));
        }
        // SAFETY: on success libvips handed us a g_malloc'd buffer of `len` bytes.
        unsafe { take_buffer(buf, len) }
    }

    /// The raw pixels of an image with `uchar` bands, row by row.
    pub fn pixels(&self) -> Result<Vec<u8>> {
        let mut len: ffi::size_t = 0;
        // SAFETY: valid image; libvips returns a g_malloc'd buffer of `len` bytes or NULL.
        unsafe {
            let buf = ffi::vips_image_write_to_memory(self.raw(), &mut len);
            take_buffer(buf, len)
        }
    }
}

/// Pixel samples of an 8- or 16-bit image, interleaved row by row, with the value that means
/// full signal (see `Image::samples`).
pub struct Samples {
    pub values: Vec<u16>,
    pub max: u16,
}

impl<'buf> Image<'buf> {
    /// The samples of an 8-bit (`max` 255) or 16-bit image. libvips' HEIF loader gives a
    /// B-bit file's values shifted to the top of 16 bits (10-bit 1023 is 65472 on 8.14.1,
    /// 8.16.1 and 8.18.7), so its `max` is read from the bit depth it records.
    pub fn samples(&self) -> Result<Samples> {
        let bytes = self.pixels()?;
        // SAFETY: reads a field of a live image.
        let format = unsafe { ffi::vips_image_get_format(self.raw()) };
        if format == ffi::VipsBandFormat_VIPS_FORMAT_UCHAR {
            return Ok(Samples {
                values: bytes.into_iter().map(u16::from).collect(),
                max: 255,
            });
        }
        if format != ffi::VipsBandFormat_VIPS_FORMAT_USHORT {
            return Err(VipsError(format!("samples of band format {format}")));
        }
        let bits = self
            .get_int("bits-per-sample") // 8.15 on
            .or_else(|| self.get_int("heif-bitdepth")) // 8.14
            .filter(|bits| (9..=16).contains(bits))
            .unwrap_or(16);
        Ok(Samples {
            values: bytes
                .chunks_exact(2)
                .map(|b| u16::from_ne_bytes([b[0], b[1]]))
                .collect(),
            max: (((1u32 << bits) - 1) << (16 - bits)) as u16,
        })
    }

    /// An 8-bit image of `bands` interleaved samples a pixel: sRGB (3 or 4 bands) or B_W.
    pub fn from_pixels(
        width: u32,
        height: u32,
        bands: u32,
        pixels: &[u8],
    ) -> Result<Image<'static>> {
        init();
        if pixels.len() != width as usize * height as usize * bands as usize {
            return Err(VipsError("pixel buffer of the wrong size".into()));
        }
        // SAFETY: libvips copies `pixels`, whose length was checked against the shape above.
        let copied = unsafe {
            ffi::vips_image_new_from_memory_copy(
                pixels.as_ptr().cast(),
                pixels.len() as ffi::size_t,
                width as c_int,
                height as c_int,
                bands as c_int,
                ffi::VipsBandFormat_VIPS_FORMAT_UCHAR,
            )
        };
        wrap::<'static>(0, copied)?.labelled_8bit()
    }

    /// The same 8-bit pixels labelled B_W (one or two bands) or sRGB.
    fn labelled_8bit(&self) -> Result<Image<'buf>> {
        let space = if self.bands() < 3 {
            ffi::VipsInterpretation_VIPS_INTERPRETATION_B_W
        } else {
            ffi::VipsInterpretation_VIPS_INTERPRETATION_sRGB
        };
        let mut out = ptr::null_mut();
        // SAFETY: valid input; NULL-terminated option list.
        let status = unsafe {
            ffi::vips_copy(
                self.raw(),
                &mut out,
                c"interpretation".as_ptr(),
                space as c_int,
                ptr::null::<c_char>(),
            )
        };
        wrap(status, out)
    }
}

/// Copy a buffer that libvips allocated with g_malloc into a Vec, and free it.
///
/// # Safety
/// `buf` is NULL or points to `len` bytes from g_malloc that nothing else will use or free.
unsafe fn take_buffer(buf: *mut c_void, len: ffi::size_t) -> Result<Vec<u8>> {
    if buf.is_null() {
        return Err(VipsError(take_error()));
    }
    // SAFETY: guaranteed by the caller.
    let bytes = unsafe { std::slice::from_raw_parts(buf.cast::<u8>(), len as usize) }.to_vec();
    // SAFETY: from g_malloc, not used after this.
    unsafe { ffi::g_free(buf) };
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_is_at_least_8_14() {
        let (major, minor, _) = version();
        assert!((major, minor) >= (8, 14), "libvips {major}.{minor}");
    }

    #[test]
    fn header_error_carries_libvips_message() {
        let err = Image::header(b"GIF89a", Loader::Gif)
            .err()
            .expect("a bare GIF signature must not open");
        // libvips' own words about the file, not our stand-in for "no message".
        assert_ne!(err.0, NO_MESSAGE);
        assert!(err.0.contains("GIF"), "{}", err.0);
    }

    #[test]
    fn thumbnail_refuses_bytes_its_loader_was_not_chosen_for() {
        let png = include_bytes!("../render/probe.png");
        assert!(Image::thumbnail(png, Loader::Png, 8, 8, false, false).is_ok());
        let err = Image::thumbnail(png, Loader::Jpeg, 8, 8, false, false)
            .err()
            .expect("a PNG must not pass as a JPEG");
        assert!(err.0.contains("pngload_buffer"), "{}", err.0);
    }

    #[test]
    fn decoder_warning_is_quoted_in_the_error() {
        // A PNG whose compressed pixels are damaged: libpng says why only in a warning.
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/alpha.png");
        let mut png = std::fs::read(path).unwrap();
        let idat = png.windows(4).position(|w| w == b"IDAT").unwrap();
        for byte in &mut png[idat + 40..idat + 60] {
            *byte ^= 0x5a;
        }
        let err = Image::load(&png, Loader::Png, Access::Random, 1)
            .and_then(|i| i.copy_memory())
            .err()
            .expect("damaged pixels must not decode");
        // libpng's own words ("IDAT: invalid bit length repeat"), not just "read error".
        assert!(err.0.contains("IDAT"), "{}", err.0);
    }
}
