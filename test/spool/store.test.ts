import { spawn } from 'node:child_process'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Database from 'better-sqlite3'
import { describe, expect, it } from 'vitest'
import { SpoolStore } from '../../spool/store.js'

const dir = () => mkdtempSync(join(tmpdir(), 'adgate-spool-'))
const entry = (partition: number, fill: number, size = 100) => ({
  topic: 'adgate.impressions',
  partition,
  records: 3,
  bytes: Buffer.alloc(size, fill),
})

describe('SpoolStore', () => {
  it('keeps appended entries across a reopen, in order, with their bytes intact', () => {
    const path = join(dir(), 'spool.sqlite')
    const a = new SpoolStore(path)
    const ids = a.append([entry(0, 1), entry(1, 2)])
    a.append([entry(0, 3)])
    a.close()
    const b = new SpoolStore(path)
    const rows = b.read(0, 1 << 20)
    expect(rows.map((r) => [r.id, r.partition, r.bytes[0]])).toEqual([
      [ids[0], 0, 1],
      [ids[1], 1, 2],
      [ids[1]! + 1, 0, 3],
    ])
    expect(b.stats()).toMatchObject({ entries: 3, records: 9, bytes: 300 })
    b.close()
  })

  it('reads a bounded amount (at least one entry), and removes by id or through an id', () => {
    const s = new SpoolStore(join(dir(), 'spool.sqlite'))
    const ids = s.append([entry(0, 1, 600), entry(0, 2, 600), entry(0, 3, 600)])
    expect(s.read(0, 1000).map((r) => r.id)).toEqual([ids[0]])
    expect(s.read(0, 10).map((r) => r.id)).toEqual([ids[0]])
    expect(s.read(ids[0]!, 1300).map((r) => r.id)).toEqual([ids[1], ids[2]])
    s.remove([ids[1]!])
    expect(s.read(0, 1 << 20).map((r) => r.id)).toEqual([ids[0], ids[2]])
    s.removeThrough(ids[2]!)
    expect(s.stats()).toMatchObject({ entries: 0, bytes: 0, oldest: null })
    s.close()
  })

  it('gives the oldest waiting entry by an index lookup, the same as stats() while the spool drains', () => {
    const s = new SpoolStore(join(dir(), 'spool.sqlite'))
    const ids = [
      ...s.append([entry(0, 1)], 1000),
      ...s.append([entry(1, 2)], 2000),
      ...s.append([entry(0, 3)], 3000),
    ]
    expect(s.oldest()).toBe(1000)
    s.remove([ids[0]!])
    expect(s.oldest()).toBe(2000)
    expect(s.oldest()).toBe(s.stats().oldest)
    s.removeThrough(ids[2]!)
    expect(s.oldest()).toBeNull()
    s.close()
  })

  it('quarantines refused entries out of the replay order, keeps them across a reopen, and forgets them only when told', () => {
    const path = join(dir(), 'spool.sqlite')
    const a = new SpoolStore(path)
    const ids = a.append([entry(0, 1), entry(0, 2), entry(1, 3)], 1000)
    a.quarantine([ids[0]!], 'MESSAGE_TOO_LARGE', 5000)
    // Out of the replay order; still on disk, so still in the spool's bytes.
    expect(a.read(0, 1 << 20).map((r) => r.id)).toEqual([ids[1], ids[2]])
    expect(a.stats()).toMatchObject({
      entries: 2,
      records: 6,
      bytes: 300,
      quarantined: { entries: 1, records: 3 },
    })
    a.refusedAgain([ids[0]!], 'INVALID_RECORD', 6000)
    a.close()
    const b = new SpoolStore(path)
    const [q] = b.quarantined(0, 1 << 20)
    expect(q).toMatchObject({
      id: ids[0],
      topic: 'adgate.impressions',
      partition: 0,
      records: 3,
      createdAt: 1000,
    })
    expect(q).toMatchObject({ reason: 'INVALID_RECORD', refusedAt: 6000, refusals: 2 })
    expect(q!.bytes.equals(Buffer.alloc(100, 1))).toBe(true)
    b.removeQuarantined([ids[0]!])
    expect(b.quarantined(0, 1 << 20)).toEqual([])
    expect(b.stats()).toMatchObject({ entries: 2, bytes: 200, quarantined: { entries: 0, records: 0 } })
    b.close()
  })

  it('opens a spool of format 1 (before the quarantine) with its batches, and refuses an unknown format', () => {
    const path = join(dir(), 'spool.sqlite')
    const a = new SpoolStore(path)
    const [id] = a.append([entry(0, 7)])
    a.close()
    const raw = new Database(path)
    raw.exec('DROP TABLE quarantine')
    raw.pragma('user_version = 1')
    raw.close()
    const b = new SpoolStore(path)
    expect(b.read(0, 1 << 20).map((r) => r.id)).toEqual([id])
    b.quarantine([id!], 'INVALID_RECORD')
    expect(b.stats()).toMatchObject({ entries: 0, quarantined: { entries: 1 } })
    b.close()
    const newer = new Database(path)
    newer.pragma('user_version = 99')
    newer.close()
    expect(() => new SpoolStore(path)).toThrow(/format 99, this build reads 2/)
  })

  it('loses nothing it acknowledged when the writing process is killed with SIGKILL', async () => {
    const path = join(dir(), 'spool.sqlite')
    const store = new URL('../../dist/spool/store.js', import.meta.url).href
    // A child appends one entry per commit and prints each acknowledged id; we kill it mid-stream.
    const child = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { SpoolStore } from ${JSON.stringify(store)}
         const s = new SpoolStore(${JSON.stringify(path)})
         for (let i = 0; ; i++) {
           const [id] = s.append([{ topic: 't', partition: 0, records: 1, bytes: Buffer.alloc(4096, i % 256) }])
           process.stdout.write(id + '\\n')
         }`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    )
    const acked: number[] = []
    await new Promise<void>((resolve) => {
      let buf = ''
      child.stdout!.on('data', (d: Buffer) => {
        buf += d.toString()
        const lines = buf.split('\n')
        buf = lines.pop()!
        for (const l of lines) acked.push(Number(l))
        if (acked.length >= 300 && child.exitCode === null) child.kill('SIGKILL')
      })
      child.on('exit', () => resolve())
    })
    const s = new SpoolStore(path)
    const ids = new Set(s.read(0, 1 << 30).map((r) => r.id))
    for (const id of acked) expect(ids.has(id)).toBe(true)
    for (const r of s.read(0, 1 << 30)) expect(r.bytes.length).toBe(4096)
    s.close()
  })
})
