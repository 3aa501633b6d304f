import t from 'tap'
import fc from 'fast-check'
import { isMetadataHost, parseIPv6 } from '../../src/rclone/hosts.ts'

t.test('refuses metadata and link-local hosts in every spelling', async t => {
  const refused = [
    '169.254.169.254', '169.254.0.1', '169.254.255.255', '2852039166', '0xa9fea9fe', '0251.0376.0251.0376',
    '169.254.43518', '0xa9.0xfe.0xa9.0xfe', '169.254.169.254.', '%31%36%39.254.169.254',
    '[::ffff:169.254.169.254]', '[::ffff:a9fe:a9fe]', '::ffff:a9fe:a9fe', '[::169.254.169.254]',
    '[::ffff:0:a9fe:a9fe]', '[64:ff9b::a9fe:a9fe]', '[2002:a9fe:a9fe::1]', '[fe80::1]', '[FE80::1%25eth0]',
    '[febf:ffff::1]', '[fd00:ec2::254]', 'metadata', 'METADATA.google.internal', 'metadata.google.internal.',
    'metadata.goog', 'instance-data', 'x.metadata.google.internal', '100.100.100.200', '168.63.129.16'
  ]
  for (const host of refused) t.ok(isMetadataHost(host), host)
})

t.test('allows loopback, private and public hosts', async t => {
  const allowed = [
    '127.0.0.1', 'localhost', '[::1]', '::1', '10.0.0.1', '192.168.1.10', '169.253.255.255', '169.255.0.1',
    's3.amazonaws.com', 'storage.googleapis.com', 'metadata.example.com', '[fec0::1]', '[::]', '0x7f000001',
    '[2001:db8::1]', 'example.com.'
  ]
  for (const host of allowed) t.notOk(isMetadataHost(host), host)
})

t.test('every IPv4 in 169.254.0.0/16 is refused in dotted, decimal and mapped forms', async t => {
  fc.assert(fc.property(fc.integer({ min: 0, max: 255 }), fc.integer({ min: 0, max: 255 }), (c, d) => {
    const n = (169 << 24 >>> 0) + (254 << 16) + (c << 8) + d
    const hex = `${((169 << 8) + 254).toString(16)}:${((c << 8) + d).toString(16)}`
    return isMetadataHost(`169.254.${c}.${d}`) && isMetadataHost(String(n)) && isMetadataHost(`0x${n.toString(16)}`) &&
      isMetadataHost(`[::ffff:169.254.${c}.${d}]`) && isMetadataHost(`[::ffff:${hex}]`)
  }), { numRuns: 300 })
})

t.test('parseIPv6 expands every legal form and refuses the rest', async t => {
  t.same(parseIPv6('::'), [0, 0, 0, 0, 0, 0, 0, 0])
  t.same(parseIPv6('1::'), [1, 0, 0, 0, 0, 0, 0, 0])
  t.same(parseIPv6('::ffff:1.2.3.4'), [0, 0, 0, 0, 0, 0xffff, 0x102, 0x304])
  t.same(parseIPv6('1:2:3:4:5:6:7:8'), [1, 2, 3, 4, 5, 6, 7, 8])
  for (const bad of [':::', '1::2::3', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7:8::', '12345::', 'g::', '::1.2.3.256', '1:2:3']) {
    t.equal(parseIPv6(bad), undefined, bad)
  }
})
