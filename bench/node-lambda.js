// A Node.js Lambda function the way the original system ran: sharp and @aws-sdk/client-s3
// loaded at start, one sharp pipeline per preset, under a minimal Runtime API client loop
// (GET .../invocation/next, POST .../invocation/{id}/response), so its cold start can be
// compared with the Rust bootstrap under the same local Runtime API. An s3:TestEvent body is
// acknowledged without work, as thumbs does; sharp and the SDK still load at start.
'use strict';
const http = require('node:http');
const sharp = require('sharp');
const { S3Client, GetObjectCommand, PutObjectCommand } = require('@aws-sdk/client-s3');

const s3 = new S3Client({ forcePathStyle: true });
const outputBucket = process.env.OUTPUT_BUCKET;
const inputPrefix = process.env.INPUT_PREFIX ?? 'uploads/';
const outputPrefix = process.env.OUTPUT_PREFIX ?? 'thumbnails/';
const presets = {
  thumb: (img) => img.resize(150, 150, { fit: 'cover', position: sharp.strategy.attention, withoutEnlargement: true }),
  small: (img) => img.resize({ width: 480, withoutEnlargement: true }),
  large: (img) => img.resize({ width: 1080, withoutEnlargement: true }),
};

async function handleRecord(rec) {
  const bucket = rec.s3.bucket.name;
  const key = decodeURIComponent(rec.s3.object.key.replace(/\+/g, ' '));
  const obj = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const input = Buffer.from(await obj.Body.transformToByteArray());
  const base = outputPrefix + key.slice(key.startsWith(inputPrefix) ? inputPrefix.length : 0);
  for (const [name, resize] of Object.entries(presets)) {
    const body = await resize(sharp(input).rotate()).webp({ quality: 80 }).toBuffer();
    await s3.send(new PutObjectCommand({
      Bucket: outputBucket, Key: `${base}/${name}.webp`, Body: body, ContentType: 'image/webp',
    }));
  }
}

async function handler(event) {
  const batchItemFailures = [];
  for (const msg of event.Records) {
    try {
      const body = JSON.parse(msg.body);
      // S3 sends an s3:TestEvent when a bucket notification is configured: acknowledge it,
      // as thumbs does (no fetch, no render).
      if (body.Event === 's3:TestEvent') continue;
      for (const rec of body.Records ?? []) await handleRecord(rec);
    } catch (err) {
      console.error(msg.messageId, err.message);
      batchItemFailures.push({ itemIdentifier: msg.messageId });
    }
  }
  return { batchItemFailures };
}

const [host, port] = process.env.AWS_LAMBDA_RUNTIME_API.split(':');
function call(method, path, body) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host, port, method, path: `/2018-06-01/runtime/${path}` }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

(async () => {
  for (;;) {
    const next = await call('GET', 'invocation/next');
    const id = next.headers['lambda-runtime-aws-request-id'];
    const result = await handler(JSON.parse(next.body));
    await call('POST', `invocation/${id}/response`, JSON.stringify(result));
  }
})();
