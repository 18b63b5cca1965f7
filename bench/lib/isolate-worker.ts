import { parentPort, workerData } from 'node:worker_threads'
import {
  type IsolatedWorkload,
  timedLoop,
  type WorkerReply,
  type WorkerRequest,
  type Workload,
  warmupLoop,
} from './harness.js'

/**
 * One isolated workload (see measureIsolated in harness.ts): builds it from its factory, says
 * so, then answers warm-up and timed-run requests one at a time. Timing happens here, so the
 * message round trips are not part of any figure.
 */
const port = parentPort!
const reply = (r: WorkerReply) => port.postMessage(r)
const fail = (err: unknown) => reply({ ok: false, error: (err as Error).stack ?? String(err) })

async function start(): Promise<void> {
  const spec = workerData as IsolatedWorkload
  const mod = (await import(spec.module)) as Record<string, (arg: unknown) => Workload | Promise<Workload>>
  const factory = mod[spec.factory]
  if (typeof factory !== 'function') throw new Error(`${spec.module} does not export ${spec.factory}`)
  const w = await factory(spec.arg)
  port.on('message', (request: WorkerRequest) => {
    if (request.op === 'warmup') warmupLoop(w, request.ms).then((value) => reply({ ok: true, value }), fail)
    else timedLoop(w, request.calls).then((timed) => reply({ ok: true, timed }), fail)
  })
  reply({ ok: true, name: w.name, events: w.events, bytes: w.bytes })
}

start().catch(fail)
