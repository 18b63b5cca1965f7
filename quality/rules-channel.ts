import { compileRules, type Rule, type RuleSet } from './rules.js'

/**
 * How a new rules version reaches the decoder workers: one SharedArrayBuffer, written by the main
 * thread (the only writer) and read by every worker at the start of each task. A task then costs
 * one Atomics.load when nothing changed — no message per task, nothing cloned — and a worker
 * started after a reload (a crashed one replaced) reads the current version like the others.
 * bench/quality.ts measures this against cloning the rules into every task.
 *
 * Layout: Int32 sequence | Int32 length | UTF-8 JSON of the validated rules. A seqlock: the
 * sequence is odd while the writer is inside, and a reader retries when it changed under it.
 * Length 0 means "no rules" (quality checks off).
 */
const SEQ = 0
const LEN = 1
const HEADER = 8

export class RulesChannel {
  private readonly ints: Int32Array
  private readonly bytes: Uint8Array

  constructor(readonly buffer: SharedArrayBuffer) {
    this.ints = new Int32Array(buffer, 0, 2)
    this.bytes = new Uint8Array(buffer, HEADER)
  }

  static create(maxBytes = 1 << 20): RulesChannel {
    return new RulesChannel(new SharedArrayBuffer(HEADER + maxBytes))
  }

  get capacity(): number {
    return this.bytes.length
  }

  /** Main thread: make `rules` (already validated) the version every following task uses. */
  publish(rules: readonly Rule[] | null): void {
    const json = rules === null ? new Uint8Array(0) : Buffer.from(JSON.stringify(rules))
    if (json.length > this.bytes.length)
      throw new Error(`the rules take ${json.length} bytes, more than the ${this.bytes.length} bytes allowed`)
    Atomics.add(this.ints, SEQ, 1)
    this.bytes.set(json)
    Atomics.store(this.ints, LEN, json.length)
    Atomics.add(this.ints, SEQ, 1)
  }

  /** The sequence number: it changes with every publish. */
  sequence(): number {
    return Atomics.load(this.ints, SEQ)
  }

  /** Worker: the current rules and the sequence they belong to. */
  read(): { sequence: number; rules: Rule[] | null } {
    for (;;) {
      const before = Atomics.load(this.ints, SEQ)
      if ((before & 1) === 1) continue
      const len = Atomics.load(this.ints, LEN)
      const text = len === 0 ? null : Buffer.from(this.bytes.subarray(0, len)).toString('utf8')
      if (Atomics.load(this.ints, SEQ) !== before) continue
      return { sequence: before, rules: text === null ? null : (JSON.parse(text) as Rule[]) }
    }
  }
}

/**
 * The rules a decode task applies. Workers attach the channel once; tests and benchmarks that run
 * tasks on their own thread set a rule set directly.
 */
let channel: RulesChannel | null = null
let fixed: RuleSet | null = null
let compiled: RuleSet | null = null
let compiledSequence = -1

export function attachRulesChannel(buffer: SharedArrayBuffer | undefined): void {
  channel = buffer === undefined ? null : new RulesChannel(buffer)
  compiledSequence = -1
}

export function useRules(rules: RuleSet | null): void {
  channel = null
  fixed = rules
}

/** Called once per task, never per event: compiles only when the sequence moved. */
export function activeRules(): RuleSet | null {
  if (channel === null) return fixed
  if (channel.sequence() === compiledSequence) return compiled
  const { sequence, rules } = channel.read()
  compiled = rules === null ? null : compileRules(rules)
  compiledSequence = sequence
  return compiled
}
