import { describe, expect, it } from 'vitest'
import type { EventSource, SourceRecord } from '../../correlator/source.js'
import { withWriterSchemas } from '../../correlator/writer-schemas-source.js'
import type { WriterSchemas } from '../../registry/subjects.js'

describe('withWriterSchemas', () => {
  it('resolves the writer schemas of each batch before the correlator sees it', async () => {
    const order: string[] = []
    const record = {
      topic: 't',
      partition: 0,
      offset: '0',
      key: null,
      value: Buffer.from([0, 0, 0, 0, 9, 1]),
    }
    const source: EventSource = {
      partitions: async () => 4,
      start: async (h) => h.onBatch([record as SourceRecord]),
      commit: async () => {},
      seek: async () => {},
      stop: async () => {},
    }
    const writers = {
      ensure: async (values: Buffer[]) => {
        order.push(`ensure ${values.length}`)
      },
    } as unknown as WriterSchemas
    const wrapped = withWriterSchemas(source, writers)
    expect(await wrapped.partitions()).toBe(4)
    expect(wrapped.ends).toBeUndefined()
    await wrapped.start({
      onBatch: async (records) => {
        order.push(`batch ${records.length}`)
      },
    })
    expect(order).toEqual(['ensure 1', 'batch 1'])
  })
})
