// examples/browser/ in headless Chromium (Debian's /usr/bin/chromium, or CHROMIUM), driven by
// puppeteer-core over the DevTools protocol: serves the bundled page on 127.0.0.1 (a free port),
// waits for it to finish, and checks the page's DOM: the exit status, the guest's output and log,
// the host-call count, the per-instruction trace, and the speed table (libpvm wasm vs anan-as in
// the same page). Saves a screenshot to $SCREENSHOT if set. Exits non-zero on any mismatch.
// Run by tests/wasm/run.sh after examples/browser/build.mjs.
import { existsSync } from 'node:fs'

import puppeteer from 'puppeteer-core'

import { serve } from '../../examples/browser/serve.mjs'

const chromium = process.env.CHROMIUM ?? '/usr/bin/chromium'
if (!existsSync(chromium)) throw new Error(`${chromium} is missing (Debian package chromium)`)

const server = await serve(0)
const url = `http://127.0.0.1:${server.address().port}/`
const browser = await puppeteer.launch({
  executablePath: chromium,
  headless: true,
  // As root in a container, with no network but loopback: no sandbox, no background traffic.
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
})
const failures = []
const check = (what, ok, got) => {
  console.log(`${ok ? 'PASS' : 'FAIL'} browser: ${what}${ok ? '' : ` (got ${JSON.stringify(got)})`}`)
  if (!ok) failures.push(what)
}
try {
  const page = await browser.newPage()
  const errors = []
  page.on('pageerror', (e) => errors.push(String(e)))
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()))
  await page.goto(url)
  await page.waitForFunction(() => /^(done|error)/.test(document.getElementById('status').textContent), { timeout: 120_000 })
  const dom = await page.evaluate(() => {
    const text = (id) => document.getElementById(id).textContent
    return {
      status: text('status'),
      isolated: globalThis.crossOriginIsolated,
      exit: text('exit'),
      output: text('output'),
      gas: text('gas'),
      hostcalls: text('hostcalls'),
      log: text('log'),
      traceCount: Number(text('trace-count')),
      trace: text('trace').split('\n'),
      bench: [...document.querySelectorAll('#bench tr.engine')].map((tr) => [...tr.children].map((c) => c.textContent)),
      ratio: Number(document.getElementById('ratio').dataset.ratio),
      ratioText: text('ratio'),
    }
  })
  if (process.env.SCREENSHOT) await page.screenshot({ path: process.env.SCREENSHOT, fullPage: true })
  check('page finished', dom.status === 'done', dom.status)
  check('cross-origin isolated (shared wasm memory)', dom.isolated === true, dom.isolated)
  check('no page errors', errors.length === 0, errors)
  check('exit halt', dom.exit === 'halt', dom.exit)
  check('output', dom.output === 'numbers: 100, 200, 300; sum = 600', dom.output)
  check('guest log', dom.log === 'hostcalls: start\nnumbers: 100, 200, 300; sum = 600', dom.log)
  check('5 host calls (log, 3 × get_number, log)', dom.hostcalls === '5', dom.hostcalls)
  check('gas left', Number(dom.gas) > 0 && Number(dom.gas) < 1_000_000, dom.gas)
  const line = /^\d+: PC \d+ [A-Z_0-9]+ g=\d+ reg="\[(\d+ ){12}\d+\]"$/
  check(
    `trace: ${dom.traceCount} instruction lines in pvm trace's format`,
    dom.traceCount > 100 && dom.trace.length >= dom.traceCount && dom.trace.slice(0, dom.traceCount).filter((l) => !l.startsWith('ECALLI') && !l.startsWith('EXIT')).every((l) => line.test(l)),
    dom.trace.slice(0, 3),
  )
  console.log(`  first trace lines:\n    ${dom.trace.slice(0, 3).join('\n    ')}`)
  check('speed table', dom.bench.length === 2 && dom.ratio > 0, dom.bench)
  for (const row of dom.bench) console.log(`  ${row[0]}: ${row[1]} instructions, ${row[2]} ms, ${row[3]} M instructions/s`)
  console.log(`  ${dom.ratioText}`)
} finally {
  await browser.close()
  server.close()
}
if (failures.length) {
  console.log(`browser test: ${failures.length} checks failed`)
  process.exit(1)
}
