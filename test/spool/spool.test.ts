import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { rounds } from '../../spool/replayer.js'
import type { SpoolEntry } from '../../spool/store.js'
import { openCompiledSpool } from '../support/compiled-spool.js'

const open = (max: number) => openCompiledSpool(mkdtempSync(join(tmpdir(), 'adgate-spool-')), max)

function set(sizes: number[]) {
  const buffer = Buffer.alloc(
    sizes.reduce((a, b) => a + b, 0),
    9,
  )
  let offset = 0
  const batches = sizes.map((length, i) => {
    const b = { topic: 'adgate.clicks', partition: i % 2, records: 10, offset, length }
    offset += length
    return b
  })
  return { buffer, batches }
}

describe('Spool (thread client)', () => {
  it('group-commits concurrent appends and accounts bytes, records and entries', async () => {
    const spool = await open(1 << 20)
    expect(spool.inUse).toBe(false)
    const pending = [spool.append(set([100, 200])), spool.append(set([300]))]
    expect(spool.inUse).toBe(true) // on its way in: new batches must queue behind it
    await Promise.all(pending)
    expect({ bytes: spool.bytes, entries: spool.entries, records: spool.records }).toEqual({
      bytes: 600,
      entries: 3,
      records: 30,
    })
    const rows = await spool.read(0, 1 << 20)
    expect(rows.map((r) => r.bytes.length)).toEqual([100, 200, 300])
    await spool.remove(rows.slice(0, 2))
    expect({ bytes: spool.bytes, entries: spool.entries }).toEqual({ bytes: 300, entries: 1 })
    // Partition ends (for a reader's lag) count every record ever written, removed ones too.
    const ends = (await spool.ends()).sort((a, b) => a.partition - b.partition)
    expect(ends).toEqual([
      { topic: 'adgate.clicks', partition: 0, next: 20 },
      { topic: 'adgate.clicks', partition: 1, next: 10 },
    ])
    await spool.close()
  })

  it('refuses at once what would pass its byte bound, and takes it again when there is room', async () => {
    const spool = await open(1000)
    await spool.append(set([600]))
    await expect(spool.append(set([500]))).rejects.toThrow(/spool is full/)
    expect(spool.bytes).toBe(600)
    await spool.remove(await spool.read(0, 1 << 20))
    await spool.append(set([500]))
    expect(spool.bytes).toBe(500)
    await spool.close()
  })
})

describe('replay rounds', () => {
  const e = (id: number, partition: number, topic = 't'): SpoolEntry => ({
    id,
    topic,
    partition,
    baseOffset: 0,
    records: 1,
    bytes: Buffer.alloc(1),
    createdAt: 0,
  })

  it('never puts two batches of one partition in a request, and keeps each partition in order', () => {
    const out = rounds([e(1, 0), e(2, 1), e(3, 0), e(4, 0, 'u'), e(5, 1), e(6, 2)])
    expect(out.map((r) => r.map((x) => x.id))).toEqual([
      [1, 2],
      [3, 4, 5, 6],
    ])
    for (const r of out) expect(new Set(r.map((x) => `${x.topic}/${x.partition}`)).size).toBe(r.length)
  })
})
