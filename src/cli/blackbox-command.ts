/**
 * `keel blackbox export` and `keel blackbox verify`: read the black box of $KEEL_DATA_DIR/keel.sqlite
 * (or --db FILE) through a read-only connection, so they work whether the runtime is stopped or
 * running (a WAL reader never blocks the writer) and can never alter the log.
 *
 * export: one JSON object per line, in seq order: seq, time, kind, type, payload (the canonical
 * JSON that was hashed, embedded verbatim), prev_hash, hash. verify: prints `ok …` and exits 0, or
 * the first broken seq and its reason and exits 1. Bad arguments or an unreadable database exit 2.
 */
import { closeSync, existsSync, openSync, writeSync } from 'node:fs';
import path from 'node:path';
import { InvalidArgumentError, type Command } from 'commander';
import { loadConfig } from '../config/config.ts';
import { BlackboxError, rowToJsonLine, type BlackboxRow } from '../store/blackbox-codec.ts';
import { BlackboxReader, DEFAULT_PAGE_SIZE, type BlackboxVerifyResult } from '../store/blackbox-reader.ts';

export const EXIT_OK = 0;
export const EXIT_BROKEN = 1;
export const EXIT_UNUSABLE = 2;

interface CommonOptions {
  readonly config?: string;
  readonly db?: string;
  readonly from?: number;
  readonly to?: number;
}

function seqArg(v: string): number {
  if (!/^\d{1,15}$/.test(v)) throw new InvalidArgumentError('must be a non-negative integer seq');
  return Number(v);
}

/** The database the command reads: --db, else <dataDir>/keel.sqlite from the configuration. */
export function blackboxDatabasePath(o: { readonly config?: string; readonly db?: string }, env: NodeJS.ProcessEnv = process.env): string {
  if (o.db !== undefined) return o.db;
  return path.join(loadConfig({ env, ...(o.config ? { file: o.config } : {}) }).dataDir, 'keel.sqlite');
}

function openReader(file: string): BlackboxReader {
  if (!existsSync(file)) throw new BlackboxError('not_migrated', `no database at ${file}`);
  return BlackboxReader.open(file);
}

/** A payload that is not JSON (only a tampered row) is exported as a string, flagged, so every line stays valid JSON. */
function exportLine(r: BlackboxRow): string {
  try {
    JSON.parse(r.payload);
    return rowToJsonLine(r);
  } catch {
    return `${rowToJsonLine({ ...r, payload: JSON.stringify(r.payload) }).slice(0, -1)},"payload_invalid":true}`;
  }
}

/** A sink for lines: a file (written synchronously) or a stream that may apply backpressure. */
interface LineSink {
  write(text: string): Promise<void>;
  close(): void;
}

function fileSink(file: string): LineSink {
  // The log holds the account's whole trading history: the owner's alone, like the database.
  const fd = openSync(file, 'w', 0o600);
  return {
    write: (text) => {
      writeSync(fd, text);
      return Promise.resolve();
    },
    close: () => closeSync(fd),
  };
}

function streamSink(stream: NodeJS.WritableStream): LineSink & { readonly stopped: () => boolean } {
  let failure: NodeJS.ErrnoException | undefined;
  const onError = (e: NodeJS.ErrnoException) => {
    failure = e;
  };
  stream.on('error', onError);
  return {
    // A closed pipe (`keel blackbox export | head`) ends the export quietly; other errors are reported.
    stopped: () => {
      if (failure !== undefined && failure.code !== 'EPIPE') throw failure;
      return failure !== undefined;
    },
    write: (text) =>
      failure !== undefined || stream.write(text)
        ? Promise.resolve()
        : new Promise<void>((resolve) => {
            const done = () => {
              stream.off('drain', done);
              stream.off('close', done);
              stream.off('error', done);
              resolve();
            };
            stream.once('drain', done);
            stream.once('close', done);
            stream.once('error', done);
          }),
    close: () => stream.off('error', onError),
  };
}

/**
 * Writes rows fromSeq..toSeq as JSON lines to `out` (a file path) or `stream`; returns the rows written.
 *
 * @example await exportBlackbox('var/keel.sqlite', { from: 1, to: 1000, out: 'box.jsonl' });
 */
export async function exportBlackbox(file: string, o: { readonly from?: number; readonly to?: number; readonly out?: string }, stream: NodeJS.WritableStream = process.stdout): Promise<number> {
  const reader = openReader(file);
  const sink: LineSink & { readonly stopped?: () => boolean } = o.out !== undefined ? fileSink(o.out) : streamSink(stream);
  let n = 0;
  try {
    let batch = '';
    let inBatch = 0;
    for (const r of reader.range(o.from ?? 0, o.to ?? Number.MAX_SAFE_INTEGER)) {
      batch += `${exportLine(r)}\n`;
      inBatch += 1;
      n += 1;
      if (inBatch === DEFAULT_PAGE_SIZE) {
        await sink.write(batch);
        if (sink.stopped?.() === true) return n;
        batch = '';
        inBatch = 0;
      }
    }
    if (batch !== '') await sink.write(batch);
    sink.stopped?.();
    return n;
  } finally {
    sink.close();
    reader.close();
  }
}

/** Verifies the chain of the database at `file` over fromSeq..toSeq (default: all of it). */
export function verifyBlackbox(file: string, o: { readonly from?: number; readonly to?: number } = {}): BlackboxVerifyResult {
  const reader = openReader(file);
  try {
    return reader.verify(o.from, o.to);
  } finally {
    reader.close();
  }
}

/** The one line `keel blackbox verify` prints. */
export function formatVerifyResult(v: BlackboxVerifyResult): string {
  if (v.ok) return v.rows === 0 ? 'ok: the black box is empty' : `ok: ${v.rows} rows verified (seq ${v.fromSeq}..${v.toSeq})`;
  return `broken at seq ${v.seq}: ${v.reason} [${v.problem}; ${v.rows} rows verified before it]`;
}

function fail(e: unknown): void {
  process.stderr.write(`keel blackbox: ${(e as Error).message}\n`);
  process.exitCode = EXIT_UNUSABLE;
}

export function registerBlackbox(program: Command): void {
  const box = program.command('blackbox').description('the black box: the hash-chained log of every input and decision');
  const common = (c: Command): Command =>
    c
      .option('--config <file>', 'configuration file (JSON or YAML); the database is <dataDir>/keel.sqlite')
      .option('--db <file>', 'database file (overrides the configuration)')
      .option('--from <seq>', 'first seq (default: the oldest kept)', seqArg)
      .option('--to <seq>', 'last seq (default: the newest)', seqArg);

  common(box.command('export').description('write rows as JSON lines (seq, time, kind, type, payload, prev_hash, hash)'))
    .option('--out <file>', 'write to this file (created 0600) instead of stdout')
    .action(async (o: CommonOptions & { out?: string }) => {
      try {
        const n = await exportBlackbox(blackboxDatabasePath(o), o);
        if (o.out !== undefined) process.stderr.write(`exported ${n} rows to ${o.out}\n`);
        process.exitCode = EXIT_OK;
      } catch (e) {
        fail(e);
      }
    });

  common(box.command('verify').description('recompute the hash chain; exit 1 at the first broken seq'))
    .option('--json', 'print the result as JSON')
    .action((o: CommonOptions & { json?: boolean }) => {
      try {
        const v = verifyBlackbox(blackboxDatabasePath(o), o);
        process.stdout.write(`${o.json === true ? JSON.stringify(v) : formatVerifyResult(v)}\n`);
        process.exitCode = v.ok ? EXIT_OK : EXIT_BROKEN;
      } catch (e) {
        fail(e);
      }
    });
}
