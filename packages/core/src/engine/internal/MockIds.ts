/**
 * Deterministic ids for the mock engine: FNV-1a in 8 lanes gives 64 hex digits, like a sha256 to the eye.
 */
export class Hasher {
  private readonly lanes = new Uint32Array(8)
  constructor() {
    for (let i = 0; i < 8; i++) this.lanes[i] = (0x811c9dc5 ^ Math.imul(i + 1, 0x9e3779b1)) >>> 0
  }
  bytes(data: Uint8Array): this {
    for (let lane = 0; lane < 8; lane++) {
      let h = this.lanes[lane]!
      for (let i = 0; i < data.length; i++) {
        h ^= data[i]!
        h = Math.imul(h, 0x01000193)
      }
      this.lanes[lane] = h >>> 0
    }
    return this
  }
  string(s: string): this {
    return this.bytes(encoder.encode(s))
  }
  hex(): string {
    let out = ""
    // A final avalanche per lane so that short inputs differ in every digit.
    for (let i = 0; i < 8; i++) {
      let h = this.lanes[i]!
      h ^= h >>> 16
      h = Math.imul(h, 0x85ebca6b)
      h ^= h >>> 13
      h = Math.imul(h, 0xc2b2ae35)
      h ^= h >>> 16
      out += (h >>> 0).toString(16).padStart(8, "0")
    }
    return out
  }
}

const encoder = new TextEncoder()
export const hex64 = (s: string): string => new Hasher().string(s).hex()
/** A number in [0, 1) derived from a string, for per-container load figures. */
export const unit = (s: string, salt: string): number =>
  parseInt(hex64(salt + s).slice(0, 8), 16) / 0x1_0000_0000
