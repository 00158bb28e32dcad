// What users install is the tarball `npm pack` makes, not the workspace: this test packs
// @authpipe/node and @authpipe/react, installs both tarballs into a scratch npm project outside the
// repository (so nothing can resolve back into sdk/js), then imports them with Node and type-checks
// against them with tsc. A wrong `files`, `exports`, `main` or `types` field fails here.
//
// It packs the dist/ that `npm run build` made (Makefile: build, then test), with --ignore-scripts:
// the packages' `prepack` script would rebuild dist/ in the source tree while the other test
// projects run. A missing dist/ is reported as such.
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);

const SDK_JS = fileURLToPath(new URL('..', import.meta.url));
const REPO = join(SDK_JS, '..', '..');
const PACKAGES = { node: '@authpipe/node', react: '@authpipe/react' } as const;
type Dir = keyof typeof PACKAGES;
const DIRS = Object.keys(PACKAGES) as Dir[];

interface PackResult {
  name: string;
  version: string;
  filename: string;
  files: { path: string }[];
}

interface PackageJson {
  name?: string;
  version?: string;
  license?: string;
  type?: string;
  main?: string;
  types?: string;
  files?: string[];
  exports?: Record<string, unknown>;
  peerDependencies?: Record<string, string>;
}

function readJson<T>(path: string): T {
  return JSON.parse(readFileSync(path, 'utf8')) as T;
}

function manifest(dir: Dir): PackageJson {
  return readJson<PackageJson>(join(SDK_JS, 'packages', dir, 'package.json'));
}

/** The version the workspace installed, so that the scratch install is served from npm's cache. */
function installedVersion(name: string): string {
  const version = readJson<PackageJson>(join(SDK_JS, 'node_modules', name, 'package.json')).version;
  if (!version) throw new Error(`no version in node_modules/${name}/package.json`);
  return version;
}

/**
 * The environment for nested npm/node runs: without the variables `npm test` sets for this
 * workspace (its prefix, its package), which would point the scratch install back at sdk/js.
 */
function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (/^npm_(package_|lifecycle_|command$|config_(local_prefix|prefix|workspaces?|include_workspace_root|global|call|yes)$)/i.test(key)) continue;
    if (key === 'NODE_OPTIONS' || key === 'VITEST' || key.startsWith('VITEST_')) continue;
    env[key] = value;
  }
  return env;
}

async function sh(command: string, args: string[], cwd: string): Promise<string> {
  try {
    const { stdout } = await run(command, args, { cwd, env: childEnv(), maxBuffer: 16 * 1024 * 1024 });
    return stdout;
  } catch (error) {
    const e = error as { stdout?: string; stderr?: string; message: string };
    throw new Error(`${command} ${args.join(' ')} (in ${cwd}) failed:\n${e.stdout ?? ''}\n${e.stderr ?? e.message}`);
  }
}

/** Every string leaf of an `exports` map: the files it points at. */
function exportTargets(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (value && typeof value === 'object') return Object.values(value).flatMap(exportTargets);
  return [];
}

const bare = (path: string) => path.replace(/^\.\//, '');

// The scratch project's checks, run by `node` inside it. They print facts as JSON; the assertions
// are made here, so that a failure shows what was found.
const IMPORT_CHECK = `
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as node from '@authpipe/node';
import * as react from '@authpipe/react';
import { createElement } from 'react';
import { renderToStaticMarkup } from 'react-dom/server';

const resolved = (specifier) => fileURLToPath(import.meta.resolve(specifier));
const client = new node.Authpipe({ secretKey: 'ap_sk_packaging_check', baseUrl: 'http://127.0.0.1:9' });
const markup = (props) => renderToStaticMarkup(
  createElement(react.AuthpipeProvider, { baseUrl: 'https://auth.example.test', getSessionToken: async () => 'ap_cs_x' },
    createElement(react.ConnectButton, props)),
);
console.log(JSON.stringify({
  node: {
    exports: Object.keys(node).sort(),
    entry: resolved('@authpipe/node'),
    version: node.SDK_VERSION,
    clientMethods: ['getCredential', 'createConnectSession', 'listConnections'].filter((m) => typeof client[m] === 'function'),
    errorsChain: new node.ConnectionRevoked('connection_revoked', 'gone', { status: 410 }) instanceof node.AuthpipeError,
  },
  react: {
    exports: Object.keys(react).sort(),
    entry: resolved('@authpipe/react'),
    stylesheet: resolved('@authpipe/react/styles.css'),
    stylesheetHasButtonClass: readFileSync(resolved('@authpipe/react/styles.css'), 'utf8').includes('.authpipe-connect-button'),
    reactFrom: resolved('react'),
    idle: markup({ provider: 'spotify' }),
    connected: markup({ provider: 'spotify', connected: 'ada' }),
  },
}));
`;

const REQUIRE_CHECK = `
const node = require('@authpipe/node');
const react = require('@authpipe/react');
console.log(JSON.stringify({
  node: Object.keys(node).sort(),
  react: Object.keys(react).sort(),
  entry: require.resolve('@authpipe/node'),
}));
`;

const TYPES_CHECK = `
import { Authpipe, AuthpipeError, ConnectionRevoked } from '@authpipe/node';
import type { Credential } from '@authpipe/node';
import { AuthpipeProvider, ConnectButton, useConnect } from '@authpipe/react';
import type { ConnectButtonProps, ConnectButtonRenderState, UseConnectResult } from '@authpipe/react';

export async function credential(authpipe: Authpipe): Promise<Credential | null> {
  try {
    return await authpipe.getCredential({ provider: 'spotify', tenantId: 'org_acme', userId: 'user_123' });
  } catch (error) {
    if (error instanceof ConnectionRevoked) return null;
    if (error instanceof AuthpipeError) throw new Error(error.code);
    throw error;
  }
}

export const props: ConnectButtonProps = { provider: 'spotify', connected: 'ada', onError: (e) => console.warn(e.code) };

export function Page() {
  const custom: UseConnectResult = useConnect('github');
  return (
    <AuthpipeProvider baseUrl="https://auth.example.test" getSessionToken={async () => 'ap_cs_x'}>
      <ConnectButton {...props}>{(state: ConnectButtonRenderState) => \`\${state.providerName} \${state.status}\`}</ConnectButton>
      <button type="button" onClick={custom.connect}>Link GitHub</button>
    </AuthpipeProvider>
  );
}

// @ts-expect-error connected is a boolean or an account name: the types must be the package's, not any.
export const wrong = <ConnectButton provider="spotify" connected={42} />;
`;

function tsconfig(moduleResolution: 'NodeNext' | 'Bundler'): string {
  return JSON.stringify({
    compilerOptions: {
      target: 'ES2022',
      lib: ['ES2022', 'DOM', 'DOM.Iterable'],
      module: moduleResolution === 'NodeNext' ? 'NodeNext' : 'ESNext',
      moduleResolution,
      jsx: 'react-jsx',
      strict: true,
      noEmit: true,
      types: [],
      // The packages' own .d.ts files are checked too, not only the way they are used.
      skipLibCheck: false,
    },
    files: ['types-check.tsx'],
  });
}

let work: string;
let scratch: string;
const packed = {} as Record<Dir, PackResult>;

beforeAll(async () => {
  for (const dir of DIRS) {
    const entry = join(SDK_JS, 'packages', dir, 'dist', 'index.js');
    if (!existsSync(entry)) throw new Error(`${relative(SDK_JS, entry)} is missing: run \`npm run build\` in sdk/js first`);
  }
  work = mkdtempSync(join(tmpdir(), 'authpipe-pack-'));
  const out = await sh(
    'npm',
    ['pack', '--json', '--ignore-scripts', '--pack-destination', work, ...DIRS.flatMap((d) => ['--workspace', `packages/${d}`])],
    SDK_JS,
  );
  for (const result of JSON.parse(out) as PackResult[]) {
    const dir = DIRS.find((d) => PACKAGES[d] === result.name);
    if (dir) packed[dir] = result;
  }

  scratch = join(work, 'app');
  await sh('mkdir', [scratch], work);
  writeFileSync(join(scratch, 'package.json'), JSON.stringify({ name: 'authpipe-pack-check', private: true, type: 'module' }));
  await sh(
    'npm',
    [
      'install',
      '--no-audit',
      '--no-fund',
      '--prefer-offline',
      ...DIRS.map((d) => join(work, packed[d]?.filename ?? `${d}.tgz`)),
      `react@${installedVersion('react')}`,
      `react-dom@${installedVersion('react-dom')}`,
      `@types/react@${installedVersion('@types/react')}`,
    ],
    scratch,
  );
  writeFileSync(join(scratch, 'import-check.mjs'), IMPORT_CHECK);
  writeFileSync(join(scratch, 'require-check.cjs'), REQUIRE_CHECK);
  writeFileSync(join(scratch, 'types-check.tsx'), TYPES_CHECK);
});

afterAll(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('package.json fields', () => {
  it.each(DIRS)('%s: main, types and exports point at dist/, types first; license Apache-2.0', (dir) => {
    const pkg = manifest(dir);
    expect(pkg.name).toBe(PACKAGES[dir]);
    expect(pkg.license).toBe('Apache-2.0');
    expect(pkg.type).toBe('module');
    expect(pkg.main).toBe('./dist/index.js');
    expect(pkg.types).toBe('./dist/index.d.ts');
    const root = pkg.exports?.['.'] as Record<string, string>;
    expect(root).toEqual({ types: './dist/index.d.ts', import: './dist/index.js', default: './dist/index.js' });
    // TypeScript takes the first matching condition: `types` must come before `import`/`default`.
    expect(Object.keys(root)[0]).toBe('types');
    expect(pkg.exports?.['./package.json']).toBe('./package.json');
    expect(pkg.files).toContain('dist');
  });

  it('@authpipe/react: react is a peer dependency, the stylesheet is exported and shipped', () => {
    const pkg = manifest('react');
    expect(pkg.peerDependencies?.react).toBeDefined();
    expect(pkg.exports?.['./styles.css']).toBe('./styles.css');
    expect(pkg.files).toContain('styles.css');
  });

  it('every package.json of the JavaScript side says Apache-2.0', () => {
    for (const path of ['sdk/js/package.json', 'sdk/js/e2e/package.json', 'examples/react-app/package.json']) {
      expect(readJson<PackageJson>(join(REPO, path)).license, path).toBe('Apache-2.0');
    }
  });
});

describe('npm pack tarballs', () => {
  it.each(DIRS)('%s: holds every file main, types and exports name, plus README and LICENSE, and no tests', (dir) => {
    const result = packed[dir];
    expect(result, `npm pack made no tarball for ${PACKAGES[dir]}`).toBeDefined();
    const files = new Set(result.files.map((f) => f.path));
    const pkg = manifest(dir);
    const named = [pkg.main, pkg.types, ...exportTargets(pkg.exports)].filter((p): p is string => Boolean(p));
    for (const path of named) expect(files, `${path} is named in package.json but not packed`).toContain(bare(path));
    for (const path of ['package.json', 'README.md', 'LICENSE', 'dist/index.js', 'dist/index.d.ts']) expect(files).toContain(path);
    expect([...files].filter((p) => /(^|\/)(test|e2e)\/|\.test\.|vitest\.config|tsconfig/.test(p))).toEqual([]);
    expect(result.version).toBe(pkg.version);
  });

  it.each(DIRS)("%s: its LICENSE is the repository's", (dir) => {
    const repoLicense = readFileSync(join(REPO, 'LICENSE'), 'utf8');
    expect(repoLicense).toMatch(/Apache License\s+Version 2\.0, January 2004/);
    expect(readFileSync(join(scratch, 'node_modules', PACKAGES[dir], 'LICENSE'), 'utf8')).toBe(repoLicense);
  });
});

describe('installed from the tarballs into a scratch project', () => {
  it('import: both packages load from node_modules with their public API; ConnectButton renders', async () => {
    const facts = JSON.parse(await sh(process.execPath, ['import-check.mjs'], scratch)) as {
      node: { exports: string[]; entry: string; version: string; clientMethods: string[]; errorsChain: boolean };
      react: {
        exports: string[];
        entry: string;
        stylesheet: string;
        stylesheetHasButtonClass: boolean;
        reactFrom: string;
        idle: string;
        connected: string;
      };
    };
    const installed = join(scratch, 'node_modules');
    expect(facts.node.entry).toBe(join(installed, '@authpipe', 'node', 'dist', 'index.js'));
    expect(facts.node.exports).toEqual(
      expect.arrayContaining(['Authpipe', 'AuthpipeError', 'ConnectionNotFound', 'ConnectionRevoked', 'SDK_VERSION']),
    );
    expect(facts.node.version).toBe(manifest('node').version);
    expect(facts.node.clientMethods).toEqual(['getCredential', 'createConnectSession', 'listConnections']);
    expect(facts.node.errorsChain).toBe(true);

    expect(facts.react.entry).toBe(join(installed, '@authpipe', 'react', 'dist', 'index.js'));
    expect(facts.react.exports).toEqual(expect.arrayContaining(['AuthpipeProvider', 'ConnectButton', 'useConnect']));
    expect(facts.react.stylesheet).toBe(join(installed, '@authpipe', 'react', 'styles.css'));
    expect(facts.react.stylesheetHasButtonClass).toBe(true);
    expect(facts.react.reactFrom.startsWith(installed)).toBe(true);
    expect(facts.react.idle).toMatch(/<button type="button" class="authpipe-connect-button"[^>]*>Connect Spotify<\/button>/);
    expect(facts.react.connected).toContain('Connected as ada');
    expect(facts.react.connected).toMatch(/>Reconnect Spotify<\/button>/);
  });

  // The packages are ES modules only; Node 20.19+ and 22.12+ can require() them (require(esm)).
  it.runIf((process.features as unknown as Record<string, unknown>).require_module === true)(
    'require: CommonJS code on a Node with require(esm) loads both packages',
    async () => {
      const facts = JSON.parse(await sh(process.execPath, ['require-check.cjs'], scratch)) as {
        node: string[];
        react: string[];
        entry: string;
      };
      expect(facts.entry).toBe(join(scratch, 'node_modules', '@authpipe', 'node', 'dist', 'index.js'));
      expect(facts.node).toEqual(expect.arrayContaining(['Authpipe', 'AuthpipeError']));
      expect(facts.react).toEqual(expect.arrayContaining(['ConnectButton']));
    },
  );

  it.each(['NodeNext', 'Bundler'] as const)(
    'types: tsc (moduleResolution %s) resolves both packages to their .d.ts and type-checks a use of them',
    async (moduleResolution) => {
      const config = `tsconfig.${moduleResolution.toLowerCase()}.json`;
      writeFileSync(join(scratch, config), tsconfig(moduleResolution));
      const tsc = join(SDK_JS, 'node_modules', 'typescript', 'bin', 'tsc');
      const listed = await sh(process.execPath, [tsc, '-p', config, '--listFilesOnly'], scratch);
      for (const dir of DIRS) {
        expect(listed).toContain(join(scratch, 'node_modules', '@authpipe', dir, 'dist', 'index.d.ts'));
      }
      expect(listed).not.toContain(join(SDK_JS, 'packages'));
      await sh(process.execPath, [tsc, '-p', config], scratch);
    },
  );
});
