import kafkajs from 'kafkajs'
import { compressFrame, decompressFrame } from 'lz4-napi'

/**
 * kafkajs ships only gzip. Kafka's LZ4 is the LZ4 frame format (KIP-57); lz4-napi writes and
 * reads it, and its async calls run on libuv's thread pool, off the event loop.
 */
let registered = false

export function registerLz4Codec(): void {
  if (registered) return
  registered = true
  kafkajs.CompressionCodecs[kafkajs.CompressionTypes.LZ4] = () => ({
    compress: (encoder: { buffer: Buffer }) => compressFrame(encoder.buffer),
    decompress: (buffer: Buffer) => decompressFrame(buffer),
  })
}
