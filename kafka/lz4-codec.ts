import kafkajs from 'kafkajs'
import { decodeLz4Frames, lz4Frame } from '../codecs/lz4-frame.js'

/**
 * kafkajs ships only gzip. Kafka's LZ4 is the LZ4 frame format (KIP-57): the same codec the
 * gateway's workers write batches with (codecs/lz4-frame.ts).
 */
let registered = false

export function registerLz4Codec(): void {
  if (registered) return
  registered = true
  kafkajs.CompressionCodecs[kafkajs.CompressionTypes.LZ4] = () => ({
    compress: async (encoder: { buffer: Buffer }) => lz4Frame(encoder.buffer),
    // Batches are bounded by the broker's message.max.bytes; 1 GiB only guards against garbage.
    decompress: async (buffer: Buffer) => decodeLz4Frames(buffer, 1 << 30),
  })
}
