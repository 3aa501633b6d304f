import { InvalidRemote } from '../errors.ts'

// `<section>:<path>` as rclone 1.60 parses it (fs/fspath): a config name is ASCII letters,
// digits, `_`, `.`, `-` and space, not starting with `-`. rclone 1.60 refuses `+` and `@`,
// so they are refused here too. Leading/trailing spaces are refused because rclone trims
// section headers, so such a name could never match a section in the rendered file. A
// leading `:` would be an on-the-fly backend configured from the string itself, bypassing
// the config policy; a `,` would add connection-string options (excluded by the charset).

const SECTION = /^[A-Za-z0-9_.](?:[A-Za-z0-9_. -]{0,62}[A-Za-z0-9_.-])?$/
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/

export interface Remote {
  section: string
  root: string
}

export function isValidSectionName (name: string): boolean {
  return SECTION.test(name)
}

export function parseRemote (remote: string): Remote {
  if (CONTROL.test(remote)) throw new InvalidRemote('remote must not contain control characters')
  if (remote.startsWith(':')) throw new InvalidRemote('remote must name a config section: on-the-fly backends (`:type:`) are not accepted')
  const colon = remote.indexOf(':')
  if (colon === -1) throw new InvalidRemote('remote must have the form <section>:<path>')
  const section = remote.slice(0, colon)
  if (!isValidSectionName(section)) {
    throw new InvalidRemote('remote section name may only contain letters, digits, `_`, `.`, `-` and inner spaces, must not start with `-` and is at most 64 characters')
  }
  return { section, root: remote.slice(colon + 1) }
}
