// libpvm's API returns Node Buffers, so a page provides the `buffer` package's Buffer as a global
// before the wasm module loads (emnapi picks it up there too).
import { Buffer } from 'buffer'

globalThis.Buffer ??= Buffer
