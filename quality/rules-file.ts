import { readFileSync, unwatchFile, watchFile } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { parse } from 'yaml'
import type { Logger } from '../config/logger.js'
import { compileRules, type Rule } from './rules.js'
import type { RulesChannel } from './rules-channel.js'
import { RulesError, validateRules } from './rules-validation.js'

/** The shipped rules, beside this module in the source tree and two levels up from dist/. */
export function defaultRulesPath(): string {
  for (const rel of ['./default-rules.yaml', '../../quality/default-rules.yaml']) {
    const path = fileURLToPath(new URL(rel, import.meta.url))
    try {
      readFileSync(path)
      return path
    } catch {}
  }
  throw new Error('quality/default-rules.yaml is missing from the installation')
}

/** ADGATE_QUALITY_RULES → the file to read, or null for "off". */
export function rulesPath(setting: string): string | null {
  if (setting === 'off') return null
  return setting === 'default' ? defaultRulesPath() : setting
}

/**
 * Reads, parses (YAML, which includes JSON) and validates a rules file, and compiles it once to
 * be sure the workers can; throws RulesError naming the file, the rule and the field.
 */
export function loadRules(path: string): Rule[] {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new RulesError(path, [`cannot be read: ${(err as Error).message}`])
  }
  let doc: unknown
  try {
    doc = parse(text, { prettyErrors: true, uniqueKeys: true })
  } catch (err) {
    throw new RulesError(path, [`is not valid YAML/JSON: ${(err as Error).message.split('\n')[0]}`])
  }
  const rules = validateRules(doc, path)
  compileRules(rules)
  return rules
}

/**
 * Hot reload: polls the file's stat (robust to editors that save by rename) and publishes each
 * valid new version to the workers; requests keep flowing on the old version meanwhile. A version
 * with errors is logged and refused, and the old one stays in force.
 */
export class RulesWatcher {
  /** Versions published, the first included; for tests and the start-up log. */
  version = 1
  lastError: string | null = null

  constructor(
    private readonly path: string,
    private readonly channel: RulesChannel,
    private readonly logger: Logger,
    private readonly onReload: (ok: boolean) => void = () => {},
    private readonly intervalMs = 500,
  ) {}

  start(): void {
    // unref: the watcher alone never keeps the process alive.
    watchFile(this.path, { interval: this.intervalMs }, (cur, prev) => {
      if (cur.mtimeMs === prev.mtimeMs && cur.size === prev.size) return
      this.reload()
    }).unref()
  }

  reload(): boolean {
    try {
      const rules = loadRules(this.path)
      this.channel.publish(rules)
      this.version++
      this.lastError = null
      this.logger.info(
        { file: this.path, rules: rules.length, version: this.version },
        'quality rules reloaded',
      )
      this.onReload(true)
      return true
    } catch (err) {
      this.lastError = (err as Error).message
      this.logger.error(
        { file: this.path, err: this.lastError },
        'quality rules not reloaded: the new version is invalid, the previous one stays in force',
      )
      this.onReload(false)
      return false
    }
  }

  close(): void {
    unwatchFile(this.path)
  }
}
