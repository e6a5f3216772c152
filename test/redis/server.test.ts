// The suite's own Redis (bench/redis-server.ts): it starts on a free loopback port, answers,
// keeps nothing on disk, two run side by side on different ports, and once stopped its process
// is gone and its port refuses connections.
import { connect } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { type RedisServer, startRedis } from '../../bench/redis-server.js';

const started: RedisServer[] = [];
afterAll(async () => {
  await Promise.all(started.map((s) => s.stop()));
});

/** One RESP command over a raw socket; resolves with the first reply, rejects if refused. */
function command(port: number, ...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let reply = '';
    socket.once('error', reject);
    socket.on('data', (chunk) => {
      reply += chunk;
      // A simple string or error is one line; an array of bulk strings ends after its items.
      if (/^[+-].*\r\n$/.test(reply) || /^\*\d+\r\n(\$-?\d+\r\n([^\r\n]*\r\n)?)*$/.test(reply)) {
        const complete =
          reply[0] !== '*' ||
          (reply.match(/\$\d+\r\n[^\r\n]*\r\n/g) ?? []).length ===
            Number(/^\*(\d+)/.exec(reply)?.[1]);
        if (complete) {
          socket.end();
          resolve(reply);
        }
      }
    });
    socket.write(
      `*${args.length}\r\n${args.map((a) => `$${Buffer.byteLength(a)}\r\n${a}\r\n`).join('')}`,
    );
  });
}

describe('the tests’ own Redis', () => {
  it('starts on a free loopback port with persistence off, beside another, and stops', async () => {
    const [a, b] = await Promise.all([startRedis(), startRedis()]);
    started.push(a, b);
    expect(a.port).not.toBe(b.port);
    expect(a.url).toBe(`redis://127.0.0.1:${a.port}`);
    expect(await command(a.port, 'PING')).toBe('+PONG\r\n');
    expect(await command(b.port, 'PING')).toBe('+PONG\r\n');
    expect(await command(a.port, 'CONFIG', 'GET', 'save')).toBe('*2\r\n$4\r\nsave\r\n$0\r\n\r\n');
    expect(await command(a.port, 'CONFIG', 'GET', 'appendonly')).toBe(
      '*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n',
    );
    expect(await command(a.port, 'CONFIG', 'GET', 'maxmemory-policy')).toBe(
      '*2\r\n$16\r\nmaxmemory-policy\r\n$10\r\nnoeviction\r\n',
    );
    await a.stop();
    await expect(command(a.port, 'PING')).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    expect(await command(b.port, 'PING')).toBe('+PONG\r\n');
  });
});
