import neostandard from 'neostandard'

export default [
  ...neostandard({ ts: true, ignores: ['dist/**', 'node_modules/**', 'coverage/**', '.tap/**'] }),
  {
    // TypeBox's `const X = Type.Object(...)` + `type X = Static<typeof X>` pattern.
    rules: { '@typescript-eslint/no-redeclare': 'off', 'no-redeclare': 'off' }
  }
]
