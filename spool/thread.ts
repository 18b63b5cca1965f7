import { parentPort, workerData } from 'node:worker_threads'
import { type NewEntry, SpoolStore, type TopicPartition } from './store.js'

/**
 * The spool's own thread: SQLite commits wait for fsync, and that wait must not stall the
 * gateway's event loop. Appends that arrive in the same turn of this thread's loop share one
 * transaction (group commit).
 */
type Request =
  | { op: 'append'; id: number; entries: NewEntry[] }
  | { op: 'read'; id: number; afterId: number; maxBytes: number; skip: TopicPartition[] }
  | { op: 'remove'; id: number; ids: number[] }
  | { op: 'removeThrough'; id: number; through: number }
  | { op: 'quarantine'; id: number; ids: number[]; reason: string }
  | { op: 'quarantined'; id: number; afterId: number; maxBytes: number }
  | { op: 'refusedAgain'; id: number; ids: number[]; reason: string }
  | { op: 'removeQuarantined'; id: number; ids: number[] }
  | { op: 'stats'; id: number }
  | { op: 'oldest'; id: number }
  | { op: 'ends'; id: number }
  | { op: 'close'; id: number }

const store = new SpoolStore((workerData as { path: string }).path)
const port = parentPort!
let appends: { id: number; entries: NewEntry[] }[] = []
let scheduled = false

function reply(id: number, result: unknown): void {
  port.postMessage({ id, ok: true, result })
}

function fail(id: number, err: unknown): void {
  port.postMessage({ id, ok: false, error: (err as Error).message })
}

function commitAppends(): void {
  scheduled = false
  const batch = appends
  appends = []
  try {
    const ids = store.append(batch.flatMap((a) => a.entries))
    let at = 0
    for (const a of batch) {
      reply(a.id, ids.slice(at, at + a.entries.length))
      at += a.entries.length
    }
  } catch (err) {
    for (const a of batch) fail(a.id, err)
  }
}

port.on('message', (msg: Request) => {
  try {
    switch (msg.op) {
      case 'append':
        appends.push(msg)
        if (!scheduled) {
          scheduled = true
          setImmediate(commitAppends)
        }
        return
      case 'read':
        return reply(msg.id, store.read(msg.afterId, msg.maxBytes, msg.skip))
      case 'remove':
        store.remove(msg.ids)
        return reply(msg.id, null)
      case 'removeThrough':
        store.removeThrough(msg.through)
        return reply(msg.id, null)
      case 'quarantine':
        store.quarantine(msg.ids, msg.reason)
        return reply(msg.id, null)
      case 'quarantined':
        return reply(msg.id, store.quarantined(msg.afterId, msg.maxBytes))
      case 'refusedAgain':
        store.refusedAgain(msg.ids, msg.reason)
        return reply(msg.id, null)
      case 'removeQuarantined':
        store.removeQuarantined(msg.ids)
        return reply(msg.id, null)
      case 'stats':
        return reply(msg.id, store.stats())
      case 'oldest':
        return reply(msg.id, store.oldest())
      case 'ends':
        return reply(msg.id, store.ends())
      case 'close':
        if (appends.length > 0) commitAppends()
        store.close()
        reply(msg.id, null)
        return port.close()
    }
  } catch (err) {
    fail(msg.id, err)
  }
})
