/**
 * The connector's icon, drawn here rather than copied from anywhere: a white envelope on the
 * brand colour, as a PNG (RGB, 8 bits per channel) — the format Power Automate's custom
 * connector import accepts. Square; the designer shows it on the brand colour.
 */
import { crc32, deflateSync } from 'node:zlib';

/** The connector's brand colour (apiProperties iconBrandColor, and the icon's background). */
export const BRAND_COLOR = '#0F4C81';

function rgb(hex: string): [number, number, number] {
  const n = Number.parseInt(hex.replace('#', ''), 16);
  return [(n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
}

/** Distance from (x, y) to the segment (ax, ay)-(bx, by). */
function distanceToSegment(x: number, y: number, ax: number, ay: number, bx: number, by: number): number {
  const dx = bx - ax;
  const dy = by - ay;
  const t = Math.max(0, Math.min(1, ((x - ax) * dx + (y - ay) * dy) / (dx * dx + dy * dy)));
  return Math.hypot(x - (ax + t * dx), y - (ay + t * dy));
}

function chunk(type: string, data: Buffer): Buffer {
  const length = Buffer.alloc(4);
  length.writeUInt32BE(data.length);
  const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(body));
  return Buffer.concat([length, body, crc]);
}

/** A `size`×`size` PNG of the envelope icon. */
export function connectorIconPng(size = 230, background = BRAND_COLOR): Buffer {
  const [br, bg, bb] = rgb(background);
  const stroke = Math.max(2, Math.round(size / 28));
  // The envelope: a rectangle in the middle with its flap drawn as a V from the top corners.
  const left = size * 0.2;
  const right = size * 0.8;
  const top = size * 0.3;
  const bottom = size * 0.7;
  const flapY = size * 0.52;
  const rows: Buffer[] = [];
  for (let y = 0; y < size; y++) {
    const row = Buffer.alloc(1 + size * 3); // filter byte 0 (none), then RGB pixels
    for (let x = 0; x < size; x++) {
      const inside = x >= left && x <= right && y >= top && y <= bottom;
      const edge = inside && (x - left < stroke || right - x < stroke || y - top < stroke || bottom - y < stroke);
      const flap =
        distanceToSegment(x, y, left, top, size / 2, flapY) < stroke / 2 + 0.5 ||
        distanceToSegment(x, y, right, top, size / 2, flapY) < stroke / 2 + 0.5;
      const white = edge || (inside && flap);
      row.writeUInt8(white ? 255 : br, 1 + x * 3);
      row.writeUInt8(white ? 255 : bg, 2 + x * 3);
      row.writeUInt8(white ? 255 : bb, 3 + x * 3);
    }
    rows.push(row);
  }
  const header = Buffer.alloc(13);
  header.writeUInt32BE(size, 0);
  header.writeUInt32BE(size, 4);
  header.writeUInt8(8, 8); // bit depth
  header.writeUInt8(2, 9); // colour type: RGB
  header.writeUInt8(0, 10); // compression
  header.writeUInt8(0, 11); // filter
  header.writeUInt8(0, 12); // no interlace
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', header),
    chunk('IDAT', deflateSync(Buffer.concat(rows))),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}
