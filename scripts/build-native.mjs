// Rebuilds better-sqlite3 for the pinned Node 24. npm may run install scripts under the machine's
// older node, and no prebuilt binary can be downloaded here, so the addon is compiled against the
// headers that ship inside the `node` devDependency: nothing is fetched from the network.
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import path from 'node:path';

const require = createRequire(import.meta.url);
const root = path.resolve(import.meta.dirname, '..');
const projectNode = existsSync(path.join(root, 'node_modules/.bin/node')) ? path.join(root, 'node_modules/.bin/node') : process.execPath;
const version = execFileSync(projectNode, ['-p', 'process.version'], { encoding: 'utf8' }).trim();

// Checked in a child process on the project's node: a failed dlopen stays cached in a process.
function loads() {
  try {
    execFileSync(projectNode, ['-e', "new (require('better-sqlite3'))(':memory:').close()"], { cwd: root, stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

if (loads()) process.exit(0);
const nodedir = path.join(root, 'node_modules/node/node_modules', `node-${process.platform}-${process.arch}`);
if (!existsSync(path.join(nodedir, 'include/node/node_api.h'))) {
  console.error(`build-native: no Node headers at ${nodedir}`);
  process.exit(1);
}
console.error(`build-native: rebuilding better-sqlite3 for node ${version}`);
const npmDir = process.env.npm_execpath ? path.resolve(path.dirname(process.env.npm_execpath), '..') : '/usr/lib/node_modules/npm';
const gyp = process.env.npm_config_node_gyp ?? require.resolve('node-gyp/bin/node-gyp.js', { paths: [npmDir] });
execFileSync(process.execPath, [gyp, 'rebuild', '--release', `--nodedir=${nodedir}`], {
  cwd: path.join(root, 'node_modules/better-sqlite3'),
  stdio: 'inherit',
  // A machine-wide `nodedir` (npmrc) would point at the older node's headers: override it.
  env: { ...process.env, npm_config_nodedir: nodedir },
});
if (!loads()) {
  console.error(`build-native: better-sqlite3 still does not load on node ${version}`);
  process.exit(1);
}
