#!/usr/bin/env node
// The CLI runs from the compiled build; `npm ci` does not build, `npm start`/`npm test` do.
import { existsSync } from 'node:fs'

const main = new URL('../dist/cli/main.js', import.meta.url)
if (!existsSync(main)) {
  process.stderr.write('adgate: not built yet; run `npm run build` first\n')
  process.exit(1)
}
await import(main.href)
