// The layers of ts/ and the arrows allowed between them (README, Layout). Every import must match an
// `allowed` rule; imports that break a rule today and wait on a move are listed in
// .dependency-cruiser-known-violations.json (npm run lint ignores those, and only those).

/** Folders (and root modules) a layer may import, besides its own folder. */
const ARROWS = {
  // The bottom: typed errors, the platform check, the native loader, one abortable sleep.
  root: [],
  learned: [],
  shared: ['learned'],
  chord: ['shared'],
  protocol: ['chord', 'shared'],
  storage: ['learned', 'shared'],
  training: ['learned', 'shared'],
  federation: ['protocol', 'storage', 'training', 'learned', 'chord', 'shared'],
  replication: ['protocol', 'storage', 'chord', 'shared'],
  overlay: ['federation', 'replication', 'protocol', 'storage', 'learned', 'chord', 'shared'],
  client: ['overlay', 'protocol', 'shared'],
  metrics: ['federation', 'replication', 'shared'],
  node: ['overlay', 'client', 'metrics', 'federation', 'replication', 'storage', 'training', 'learned', 'chord', 'protocol', 'shared'],
  cli: ['node', 'client', 'overlay', 'shared'],
}

const ROOT_MODULES = '^ts/[^/]+[.]ts$'

const arrowRules = Object.entries(ARROWS).map(([layer, below]) => ({
  comment: `${layer} imports ${below.length === 0 ? 'only the root modules' : below.join(', ')} (and the root modules)`,
  from: { path: layer === 'root' ? ROOT_MODULES : `^ts/${layer}/` },
  to: {
    path: [ROOT_MODULES, ...(layer === 'root' ? [] : [`^ts/${layer}/`]), ...below.map((folder) => `^ts/${folder}/`)],
  },
}))

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'modules import each other in a circle (types may refer back: parts built from each other)',
      from: {},
      to: { circular: true, viaOnly: { dependencyTypesNot: ['type-only'] } },
    },
    {
      name: 'shipped-stays-in-ts',
      severity: 'error',
      comment: 'the shipped library (ts/) never imports the simulator, tests or benchmarks',
      from: { path: '^ts/' },
      to: { path: '^(sim|__test__|benchmark|examples)/' },
    },
    {
      name: 'sim-without-network',
      severity: 'error',
      comment: 'the simulator drives the pure Chord code, never the libp2p overlay',
      from: { path: '^sim/' },
      to: { path: '^ts/(overlay|protocol|client|node|cli)/' },
    },
  ],
  allowed: [
    ...arrowRules,
    { comment: 'the package entry re-exports every layer', from: { path: '^ts/index[.]ts$' }, to: { path: '^ts/' } },
    { comment: 'the native loader reads the generated binding', from: { path: '^ts/native[.]ts$' }, to: { path: '^native/' } },
    { comment: 'the simulator is above the library', from: { path: '^sim/' }, to: { path: '^(sim|ts)/' } },
    { comment: 'packages and Node built-ins', from: {}, to: { dependencyTypes: ['npm', 'npm-dev', 'npm-optional', 'core'] } },
  ],
  allowedSeverity: 'error',
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.test.json' },
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default', 'types'] },
  },
}
