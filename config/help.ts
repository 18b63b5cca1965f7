import { SETTINGS } from './settings.js'

/** The settings table for --help. */
export function settingsHelp(): string {
  const rows = Object.values(SETTINGS).map(
    (s) => `  ${s.env.padEnd(28)} ${s.doc}${s.default !== undefined ? ` [${s.default}]` : ''}`,
  )
  return `Environment (or a JSON file named by ADGATE_CONFIG):\n${rows.join('\n')}\n`
}
