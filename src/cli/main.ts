#!/usr/bin/env node
/**
 * Entry point of `keel`. Turns on Node's on-disk compile cache before anything else is loaded
 * (most of a cold start is compiling modules: a restart after a crash reaches ready sooner),
 * then runs the command line (program.ts).
 */
import { enableCompileCache } from 'node:module';

enableCompileCache();
const { main } = await import('./program.ts');
await main(process.argv);
