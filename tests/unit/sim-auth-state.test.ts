/** NonceTracker and AgentRegistry rules. */
import { describe, expect, it } from 'vitest';
import { AgentRegistry, NonceTracker, parseAgentName, DAY_MS } from '../../src/sim/auth/index.ts';

const T0 = 1_800_000_000_000;
const addr = (n: number) => '0x' + n.toString(16).padStart(40, '0');

describe('NonceTracker', () => {
  it('keeps the 100 highest; below the smallest is too low once full; never reuses', () => {
    const t = new NonceTracker();
    const s = addr(1);
    for (let i = 1; i <= 100; i++) expect(t.use(s, T0 + i * 10, T0)).toBeUndefined();
    // Full: 10..1000 (offsets). A fresh nonce between stored ones is still accepted.
    expect(t.use(s, T0 + 15, T0)).toBeUndefined(); // evicts T0+10
    expect(t.stored(s)).toHaveLength(100);
    expect(t.stored(s)[0]).toBe(T0 + 15);
    expect(t.check(s, T0 + 10, T0)).toBe(`Invalid nonce: nonce too low ${T0 + 10} < ${T0 + 15}`);
    expect(t.check(s, T0 + 15, T0)).toBe(`Invalid nonce: duplicate nonce ${T0 + 15}`);
    expect(t.check(s, T0 + 500, T0)).toBe(`Invalid nonce: duplicate nonce ${T0 + 500}`);
    expect(t.check(s, T0 + 501, T0)).toBeUndefined();
  });

  it('below the smallest is fine while fewer than 100 are stored', () => {
    const t = new NonceTracker();
    t.use(addr(1), T0, T0);
    expect(t.check(addr(1), T0 - 1, T0)).toBeUndefined();
  });

  it('is per signer and case-insensitive', () => {
    const t = new NonceTracker();
    t.use(addr(0xabc), T0, T0);
    expect(t.check(addr(0xabc).toUpperCase().replace('0X', '0x'), T0, T0)).toMatch(/duplicate/);
    expect(t.check(addr(2), T0, T0)).toBeUndefined();
  });

  it('time window is (now − 2 days, now + 1 day)', () => {
    const t = new NonceTracker();
    expect(t.check(addr(1), T0 - 2 * DAY_MS, T0)).toBe(`Invalid nonce: nonce too low ${T0 - 2 * DAY_MS} < ${T0 - 2 * DAY_MS}`);
    expect(t.check(addr(1), T0 - 2 * DAY_MS + 1, T0)).toBeUndefined();
    expect(t.check(addr(1), T0 + DAY_MS, T0)).toBe(`Invalid nonce: nonce too high ${T0 + DAY_MS} > ${T0 + DAY_MS}`);
    expect(t.check(addr(1), T0 + DAY_MS - 1, T0)).toBeUndefined();
  });

  it('check does not mutate; forget drops the set', () => {
    const t = new NonceTracker();
    expect(t.check(addr(1), T0, T0)).toBeUndefined();
    expect(t.stored(addr(1))).toEqual([]);
    t.commit(addr(1), T0);
    t.forget(addr(1));
    expect(t.check(addr(1), T0, T0)).toBeUndefined();
  });
});

describe('AgentRegistry', () => {
  const M = addr(0x100);
  const M2 = addr(0x200);

  it('parses valid_until', () => {
    expect(parseAgentName('bot1')).toEqual({ name: 'bot1', validUntil: null });
    expect(parseAgentName(`bot1 valid_until ${T0}`)).toEqual({ name: 'bot1', validUntil: T0 });
    expect(parseAgentName(` valid_until ${T0}`)).toEqual({ name: '', validUntil: T0 });
  });

  it('a new unnamed approval replaces (deregisters) the old unnamed agent', () => {
    const r = new AgentRegistry();
    expect(r.approve(M, addr(1), '', T0)).toEqual({ ok: true, replaced: [] });
    expect(r.approve(M, addr(2), '', T0)).toEqual({ ok: true, replaced: [addr(1)] });
    expect(r.masterOf(addr(1), T0)).toBeUndefined();
    expect(r.masterOf(addr(2), T0)).toBe(M);
  });

  it('same name replaces; 3 named + 1 unnamed max', () => {
    const r = new AgentRegistry();
    r.approve(M, addr(1), 'a', T0);
    r.approve(M, addr(2), 'b', T0);
    r.approve(M, addr(3), 'c', T0);
    r.approve(M, addr(4), '', T0);
    expect(r.approve(M, addr(5), 'd', T0)).toEqual({ ok: false, error: 'Cannot approve more than 3 named agents.' });
    expect(r.approve(M, addr(5), 'b', T0)).toEqual({ ok: true, replaced: [addr(2)] });
    expect(r.list(M, T0).map((a) => [a.name, a.address])).toEqual([['', addr(4)], ['a', addr(1)], ['b', addr(5)], ['c', addr(3)]]);
    expect(r.masterOf(addr(2), T0)).toBeUndefined();
  });

  it('re-approving the same address under another name moves it', () => {
    const r = new AgentRegistry();
    r.approve(M, addr(1), 'a', T0);
    expect(r.approve(M, addr(1), 'z', T0)).toEqual({ ok: true, replaced: [] });
    expect(r.list(M, T0)).toEqual([{ address: addr(1), name: 'z', validUntil: null }]);
  });

  it('an agent belongs to one master', () => {
    const r = new AgentRegistry();
    r.approve(M, addr(1), '', T0);
    expect(r.approve(M2, addr(1), '', T0)).toMatchObject({ ok: false });
    expect(r.masterOf(addr(1), T0)).toBe(M);
  });

  it('valid_until: expires, frees its slot, must be within 180 days', () => {
    const r = new AgentRegistry();
    expect(r.approve(M, addr(1), `a valid_until ${T0 + 1000}`, T0)).toEqual({ ok: true, replaced: [] });
    expect(r.masterOf(addr(1), T0 + 999)).toBe(M);
    expect(r.masterOf(addr(1), T0 + 1000)).toBeUndefined();
    expect(r.list(M, T0 + 1000)).toEqual([]);
    expect(r.approve(M, addr(2), `b valid_until ${T0 + 180 * DAY_MS + 1}`, T0)).toMatchObject({ ok: false });
    expect(r.approve(M, addr(2), `b valid_until ${T0}`, T0)).toMatchObject({ ok: false });
    expect(r.approve(M, addr(2), `b valid_until ${T0 + 180 * DAY_MS}`, T0)).toMatchObject({ ok: true });
  });

  it('expired named agents do not count toward the limit', () => {
    const r = new AgentRegistry();
    r.approve(M, addr(1), `a valid_until ${T0 + 10}`, T0);
    r.approve(M, addr(2), 'b', T0);
    r.approve(M, addr(3), 'c', T0);
    expect(r.approve(M, addr(4), 'd', T0 + 5)).toMatchObject({ ok: false });
    expect(r.approve(M, addr(4), 'd', T0 + 10)).toMatchObject({ ok: true });
  });

  it('rejects base names longer than 16 characters', () => {
    expect(new AgentRegistry().approve(M, addr(1), 'x'.repeat(17), T0)).toMatchObject({ ok: false });
  });
});
