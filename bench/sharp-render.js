// sharp as a benchmark contender, two ways (WebP q=80, written to disk):
//  --way original (the default): the original system's, one sharp(buffer).rotate().resize(...)
//    pipeline per preset, so three decodes per image;
//  --way once: what a sharp user who knows better writes: one decode, shrinking on load to the
//    largest preset's size, the pixels kept raw in memory, and every preset derived from them, the
//    three encodes at once. sharp's default fastShrinkOnLoad lets libjpeg shrink by up to the
//    whole factor (2 for 1/3.7), where libvips' thumbnail (thumbs) leaves a factor of two for the
//    resize (1 there): sharp decodes less, at a little sharpness; the output bytes stay within 1 %.
// Usage: node sharp-render.js --out DIR [--parallel N] [--way original|once] FILE...
// SHARP_MODULE names another sharp install to load (bench/sharp-0.35: sharp 0.35, libvips 8.18;
// bench/sharp-global: sharp built against the layer's libvips).
// Prints one JSON line per image: {"file", "ms"} (read + 3 renditions + writes) or {"file", "error"}.
'use strict';
const fs = require('node:fs/promises');
const path = require('node:path');
const sharp = require(process.env.SHARP_MODULE || 'sharp');

// libvips threads per pipeline; the bench sets VIPS_CONCURRENCY=1 for the one-core runs.
if (process.env.VIPS_CONCURRENCY) sharp.concurrency(Number(process.env.VIPS_CONCURRENCY));

const presets = {
  thumb: (img) => img.resize(150, 150, { fit: 'cover', position: sharp.strategy.attention, withoutEnlargement: true }),
  small: (img) => img.resize({ width: 480, withoutEnlargement: true }),
  large: (img) => img.resize({ width: 1080, withoutEnlargement: true }),
};

// The largest preset, the one the others can be derived from.
const LARGEST = 'large';

const ways = {
  async original(input, write) {
    for (const [name, resize] of Object.entries(presets)) {
      await write(name, await resize(sharp(input).rotate()).webp({ quality: 80 }).toBuffer());
    }
  },
  async once(input, write) {
    const { data, info } = await presets[LARGEST](sharp(input).rotate()).raw()
      .toBuffer({ resolveWithObject: true });
    const raw = { raw: { width: info.width, height: info.height, channels: info.channels } };
    await Promise.all(Object.entries(presets).map(async ([name, resize]) => {
      const pixels = sharp(data, raw);
      const img = name === LARGEST ? pixels : resize(pixels);
      await write(name, await img.webp({ quality: 80 }).toBuffer());
    }));
  },
};

async function renderOne(file, out, way) {
  const start = process.hrtime.bigint();
  const input = await fs.readFile(file);
  const dir = path.join(out, path.basename(file));
  await fs.mkdir(dir, { recursive: true });
  await way(input, (name, webp) => fs.writeFile(path.join(dir, `${name}.webp`), webp));
  return Number(process.hrtime.bigint() - start) / 1e6;
}

async function main() {
  const args = process.argv.slice(2);
  let out = null;
  let parallel = 1;
  let way = ways.original;
  const files = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--out') out = args[++i];
    else if (args[i] === '--parallel') parallel = Number(args[++i]);
    else if (args[i] === '--way') way = ways[args[++i]];
    else files.push(args[i]);
  }
  if (!out || files.length === 0 || !(parallel >= 1) || !way) {
    console.error('usage: node sharp-render.js --out DIR [--parallel N] [--way original|once] FILE...');
    process.exit(2);
  }
  let next = 0;
  const worker = async () => {
    while (next < files.length) {
      const file = files[next++];
      try {
        const ms = await renderOne(file, out, way);
        process.stdout.write(JSON.stringify({ file, ms }) + '\n');
      } catch (err) {
        process.stdout.write(JSON.stringify({ file, error: String(err.message).replace(/\s+/g, ' ').slice(0, 300) }) + '\n');
      }
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
