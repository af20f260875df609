/**
 * Signed rule bundles: a single JSON document carrying a rules folder, signed with Ed25519
 * (node:crypto, RFC 8032), so a fleet can take rule updates from a file, a folder or a URL and
 * refuse anything it does not trust.
 *
 *   {"format": "patchpoint-rule-bundle", "version": 1,
 *    "manifest": {"created": "2026-03-01T10:00:00.000Z", "key_id": "3f2a...",
 *                 "comment": "...", "files": [{"path": "apache/PP-2021-44228.yaml",
 *                 "size": 1234, "sha256": "<hex>"}, ...]},
 *    "files": {"apache/PP-2021-44228.yaml": "<base64>", ...},
 *    "signature": {"alg": "ed25519", "key_id": "3f2a...", "value": "<base64>"}}
 *
 * The signature covers `SIGNING_PREFIX + canonicalJson(manifest)` (object keys sorted, no
 * spaces); the manifest pins every file by size and SHA-256, and the file set must equal the
 * manifest's exactly. key_id: the first 16 hex digits of SHA-256 over the public key's DER
 * (SPKI). Paths are relative, '/'-separated, without '.', '..', empty or hidden segments.
 *
 * Never trust a length field: the whole document, file count, path length and each file are
 * bounded, and verification never throws (it returns the reason).
 */
import {createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify} from 'node:crypto'
import type {KeyObject} from 'node:crypto'
import {lstatSync, readdirSync, readFileSync} from 'node:fs'
import {readdir, readFile, stat} from 'node:fs/promises'
import path from 'node:path'

export const BUNDLE_FORMAT = 'patchpoint-rule-bundle'
export const BUNDLE_VERSION = 1
export const SIGNING_PREFIX = 'patchpoint-rule-bundle/v1\n'
/** Largest bundle document read (bytes). */
export const MAX_BUNDLE_BYTES = 64 * 1024 * 1024
/** Most files in a bundle. */
export const MAX_BUNDLE_FILES = 10_000
/** Largest single file in a bundle. */
export const MAX_BUNDLE_FILE_BYTES = 4 * 1024 * 1024
export const MAX_BUNDLE_PATH_CHARS = 512
export const MAX_BUNDLE_DEPTH = 8
/** Trusted public keys read at most, and their largest size. */
export const MAX_TRUSTED_KEYS = 100
export const MAX_KEY_FILE_BYTES = 16 * 1024
export const TRUSTED_KEYS_DIR = 'trusted-keys'

export interface BundleFileEntry {
  path: string
  size: number
  sha256: string
}

export interface BundleManifest {
  created: string
  key_id: string
  comment?: string
  files: BundleFileEntry[]
}

export interface RuleBundle {
  format: typeof BUNDLE_FORMAT
  version: typeof BUNDLE_VERSION
  manifest: BundleManifest
  files: Record<string, string>
  signature?: {alg: 'ed25519'; key_id: string; value: string}
}

export interface TrustedKey {
  keyId: string
  key: KeyObject
  /** where it came from */
  source: string
}

export type VerifyResult =
  | {ok: true; id: string; keyId: string; manifest: BundleManifest; files: Map<string, Buffer>; key: TrustedKey}
  | {ok: false; reason: string}

/** JSON with object keys sorted at every level, no whitespace. */
export function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null'
  if (Array.isArray(v)) return '[' + v.map(canonicalJson).join(',') + ']'
  const o = v as Record<string, unknown>
  return '{' + Object.keys(o).filter((k) => o[k] !== undefined).sort().map((k) => JSON.stringify(k) + ':' + canonicalJson(o[k])).join(',') + '}'
}

export function signedBytes(manifest: BundleManifest): Buffer {
  return Buffer.from(SIGNING_PREFIX + canonicalJson(manifest), 'utf8')
}

/** Bundle id: SHA-256 (hex) of the signed bytes. */
export function bundleId(manifest: BundleManifest): string {
  return createHash('sha256').update(signedBytes(manifest)).digest('hex')
}

export function keyIdOf(key: KeyObject): string {
  const pub = key.type === 'private' ? createPublicKey(key) : key
  return createHash('sha256').update(pub.export({format: 'der', type: 'spki'})).digest('hex').slice(0, 16)
}

/** A new Ed25519 key pair as PEM (private: PKCS#8, public: SPKI). */
export function generateSigningKey(): {privatePem: string; publicPem: string; keyId: string} {
  const {privateKey, publicKey} = generateKeyPairSync('ed25519')
  return {
    privatePem: privateKey.export({format: 'pem', type: 'pkcs8'}).toString(),
    publicPem: publicKey.export({format: 'pem', type: 'spki'}).toString(),
    keyId: keyIdOf(publicKey),
  }
}

/** Is `p` an acceptable bundle path? */
export function validBundlePath(p: unknown): p is string {
  if (typeof p !== 'string' || p.length === 0 || p.length > MAX_BUNDLE_PATH_CHARS) return false
  const segs = p.split('/')
  if (segs.length > MAX_BUNDLE_DEPTH + 1) return false
  return segs.every((s) => /^[A-Za-z0-9_][A-Za-z0-9._-]*$/.test(s) && s !== '.' && s !== '..')
}

/** Regular files under `dir` (relative '/' paths, sorted), skipping dot-files and symlinks. */
export function collectFiles(dir: string): string[] {
  const out: string[] = []
  const walk = (rel: string, depth: number): void => {
    if (depth > MAX_BUNDLE_DEPTH) throw new Error(`${path.join(dir, rel)}: nested deeper than ${MAX_BUNDLE_DEPTH} folders`)
    const abs = path.join(dir, rel)
    for (const e of readdirSync(abs, {withFileTypes: true}).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (e.name.startsWith('.')) continue
      const r = rel === '' ? e.name : `${rel}/${e.name}`
      if (e.isDirectory()) walk(r, depth + 1)
      else if (e.isFile()) {
        if (!validBundlePath(r)) throw new Error(`${path.join(dir, r)}: file name not allowed in a bundle (letters, digits, . _ - only)`)
        out.push(r)
        if (out.length > MAX_BUNDLE_FILES) throw new Error(`${dir}: more than ${MAX_BUNDLE_FILES} files`)
      }
    }
  }
  walk('', 0)
  return out
}

export interface CreateBundleOptions {
  comment?: string
  /** creation time (default now) */
  created?: Date
}

/** Make a signed bundle of every file under `rulesDir`. Throws on unreadable input (a CLI error). */
export function createBundle(rulesDir: string, privateKeyPem: string, opts: CreateBundleOptions = {}): RuleBundle {
  const key = createPrivateKey(privateKeyPem)
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`signing key is ${key.asymmetricKeyType ?? 'unknown'}, not ed25519`)
  const st = lstatSync(rulesDir)
  if (!st.isDirectory() && !st.isSymbolicLink()) throw new Error(`${rulesDir} is not a folder`)
  const files: Record<string, string> = {}
  const entries: BundleFileEntry[] = []
  for (const rel of collectFiles(rulesDir)) {
    const data = readFileSync(path.join(rulesDir, ...rel.split('/')))
    if (data.length > MAX_BUNDLE_FILE_BYTES) throw new Error(`${rel}: larger than ${MAX_BUNDLE_FILE_BYTES} bytes`)
    files[rel] = data.toString('base64')
    entries.push({path: rel, size: data.length, sha256: createHash('sha256').update(data).digest('hex')})
  }
  const keyId = keyIdOf(key)
  const manifest: BundleManifest = {created: (opts.created ?? new Date()).toISOString(), key_id: keyId, files: entries}
  if (opts.comment) manifest.comment = opts.comment
  const value = sign(null, signedBytes(manifest), key).toString('base64')
  return {format: BUNDLE_FORMAT, version: BUNDLE_VERSION, manifest, files, signature: {alg: 'ed25519', key_id: keyId, value}}
}

/** Parse a PEM public key; undefined unless it is Ed25519. */
export function parsePublicKey(pem: string | Buffer): KeyObject | undefined {
  try {
    const k = createPublicKey(pem)
    return k.asymmetricKeyType === 'ed25519' ? k : undefined
  } catch {
    return undefined
  }
}

/** The keys in `<stateDir>/trusted-keys/*.pub` (bad files are listed in `problems`). */
export async function readTrustedKeys(stateDir: string, problems: string[] = []): Promise<TrustedKey[]> {
  const dir = path.join(stateDir, TRUSTED_KEYS_DIR)
  let names: string[]
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith('.pub')).sort()
  } catch {
    return []
  }
  const out: TrustedKey[] = []
  for (const n of names.slice(0, MAX_TRUSTED_KEYS)) {
    const f = path.join(dir, n)
    try {
      if ((await stat(f)).size > MAX_KEY_FILE_BYTES) {
        problems.push(`${f}: too large for a public key, ignored`)
        continue
      }
      const key = parsePublicKey(await readFile(f))
      if (!key) {
        problems.push(`${f}: not an Ed25519 public key (PEM), ignored`)
        continue
      }
      out.push({keyId: keyIdOf(key), key, source: f})
    } catch {
      problems.push(`${f}: unreadable, ignored`)
    }
  }
  if (names.length > MAX_TRUSTED_KEYS) problems.push(`${dir}: more than ${MAX_TRUSTED_KEYS} keys; the rest were ignored`)
  return out
}

const HEX64 = /^[0-9a-f]{64}$/
const B64 = /^[A-Za-z0-9+/]*={0,2}$/

/** Check a bundle's text against trusted keys. Never throws: a refusal carries its reason. */
export function verifyBundle(text: string | Buffer, trusted: readonly TrustedKey[]): VerifyResult {
  const no = (reason: string): VerifyResult => ({ok: false, reason})
  if (text.length > MAX_BUNDLE_BYTES) return no(`bundle larger than ${MAX_BUNDLE_BYTES} bytes`)
  let doc: unknown
  try {
    doc = JSON.parse(typeof text === 'string' ? text : text.toString('utf8'))
  } catch {
    return no('not a rule bundle (not JSON)')
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) return no('not a rule bundle')
  const b = doc as Partial<RuleBundle>
  if (b.format !== BUNDLE_FORMAT) return no('not a rule bundle (format field)')
  if (b.version !== BUNDLE_VERSION) return no(`unsupported bundle version ${JSON.stringify(b.version)}`)
  const m = b.manifest as BundleManifest | undefined
  if (!m || typeof m !== 'object' || !Array.isArray(m.files) || typeof m.created !== 'string' || Number.isNaN(Date.parse(m.created))) {
    return no('bundle manifest is malformed')
  }
  const sig = b.signature
  if (!sig || typeof sig !== 'object' || sig.alg !== 'ed25519' || typeof sig.value !== 'string' || sig.value === '') return no('bundle is not signed')
  if (trusted.length === 0) return no('no trusted keys: add the publisher\'s public key to .patchpoint/trusted-keys/')
  const sigBytes = B64.test(sig.value) ? Buffer.from(sig.value, 'base64') : Buffer.alloc(0)
  if (sigBytes.length !== 64) return no('bundle signature is malformed')
  let data: Buffer
  try {
    data = signedBytes(m)
  } catch {
    return no('bundle manifest is malformed')
  }
  const ordered = [...trusted].sort((x, y) => Number(y.keyId === sig.key_id) - Number(x.keyId === sig.key_id))
  const key = ordered.find((k) => {
    try {
      return verify(null, data, k.key, sigBytes)
    } catch {
      return false
    }
  })
  if (!key) {
    return no(trusted.some((k) => k.keyId === sig.key_id)
      ? `bad signature: the bundle was modified after signing (key ${sig.key_id})`
      : `signed by untrusted key ${String(sig.key_id).slice(0, 16)} (or modified after signing)`)
  }
  // signature good: now the files must be exactly the manifest's
  if (m.files.length > MAX_BUNDLE_FILES) return no(`more than ${MAX_BUNDLE_FILES} files`)
  const filesObj = b.files
  if (!filesObj || typeof filesObj !== 'object' || Array.isArray(filesObj)) return no('bundle has no files object')
  const files = new Map<string, Buffer>()
  for (const e of m.files) {
    if (!e || !validBundlePath(e.path)) return no(`bad path in manifest: ${JSON.stringify(e?.path).slice(0, 80)}`)
    if (files.has(e.path)) return no(`duplicate path in manifest: ${e.path}`)
    if (!Number.isSafeInteger(e.size) || e.size < 0 || e.size > MAX_BUNDLE_FILE_BYTES || typeof e.sha256 !== 'string' || !HEX64.test(e.sha256)) {
      return no(`bad manifest entry for ${e.path}`)
    }
    const enc = (filesObj as Record<string, unknown>)[e.path]
    if (typeof enc !== 'string' || !B64.test(enc)) return no(`file missing or not base64: ${e.path}`)
    const bytes = Buffer.from(enc, 'base64')
    if (bytes.length !== e.size) return no(`file size differs from the signed manifest: ${e.path}`)
    if (createHash('sha256').update(bytes).digest('hex') !== e.sha256) return no(`file content differs from the signed manifest: ${e.path}`)
    files.set(e.path, bytes)
  }
  const extra = Object.keys(filesObj).find((k) => !files.has(k))
  if (extra !== undefined) return no(`file not in the signed manifest: ${extra.slice(0, 200)}`)
  return {ok: true, id: createHash('sha256').update(data).digest('hex'), keyId: key.keyId, manifest: m, files, key}
}
