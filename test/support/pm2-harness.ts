/**
 * Real PM2 (the devDependency, never a global one) for test/pm2.test.ts: its
 * daemon isolated in a fresh PM2_HOME under a temp dir, killed by `kill()`
 * (which every test calls in its teardown, pass or fail), running
 * test/support/processes/pm2/app.mjs against the built package.
 */
import { execFile } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from './helpers.ts';

const PM2 = fileURLToPath(new URL('../../node_modules/.bin/pm2', import.meta.url));
const APP = fileURLToPath(new URL('./processes/pm2/app.mjs', import.meta.url));
const DIST = fileURLToPath(new URL('../../dist/adapters/http.js', import.meta.url));

/** One online instance, as `pm2 jlist` gives it. */
export interface Instance {
  /** PM2's id (`pm2 stop <id>`). */
  pmId: number;
  /** NODE_APP_INSTANCE. */
  instance: number;
  pid: number;
}

/** What the app is started with. */
export interface AppConfig {
  mode: 'cluster' | 'fork';
  instances: number;
  env: Record<string, string>;
}

export class Pm2 {
  /** A temp dir for PM2_HOME, logs, the status file and sockets. */
  readonly dir: string;
  readonly home: string;
  private readonly cleanup: () => void;

  constructor() {
    if (!existsSync(DIST)) throw new Error('test/pm2.test.ts runs the built package: run `npm run build` first');
    const temp = tempDir('wsgi-status-pm2-');
    this.dir = temp.dir;
    this.cleanup = temp.cleanup;
    this.home = join(this.dir, 'pm2');
  }

  /** Runs `pm2 <args>` with this PM2_HOME; resolves with its stdout. */
  run(...args: string[]): Promise<string> {
    const env: NodeJS.ProcessEnv = { ...process.env, PM2_HOME: this.home };
    // The test may itself run under PM2 or node:cluster: the daemon and its apps must not inherit that.
    delete env.NODE_APP_INSTANCE;
    delete env.NODE_UNIQUE_ID;
    delete env.pm_id;
    return new Promise((resolve, reject) => {
      execFile(PM2, args, { env, timeout: 60_000, maxBuffer: 16 * 1024 * 1024 }, (error, stdout, stderr) => {
        if (error) reject(new Error(`pm2 ${args.join(' ')}: ${error.message}\n${stdout}\n${stderr}`));
        else resolve(stdout);
      });
    });
  }

  /** Starts the app `app` from an ecosystem file. PM2 waits for each instance's `ready` message. */
  async start(config: AppConfig): Promise<void> {
    const ecosystem = join(this.dir, 'ecosystem.json');
    const app = {
      name: 'app',
      script: APP,
      cwd: fileURLToPath(new URL('../..', import.meta.url)),
      exec_mode: config.mode,
      instances: config.instances,
      // PM2 sends SIGINT, then SIGKILL after kill_timeout: leave time for the graceful close.
      kill_timeout: 5000,
      wait_ready: true,
      listen_timeout: 15_000,
      autorestart: true,
      out_file: join(this.dir, 'out.log'),
      error_file: join(this.dir, 'error.log'),
      merge_logs: true,
      env: config.env,
    };
    writeFileSync(ecosystem, JSON.stringify({ apps: [app] }));
    await this.run('start', ecosystem);
  }

  /** The online instances of `app`, by NODE_APP_INSTANCE. */
  async instances(): Promise<Instance[]> {
    const list = JSON.parse(await this.run('jlist')) as Array<{
      pid: number;
      pm_id: number;
      pm2_env: { status: string; NODE_APP_INSTANCE?: number | string };
    }>;
    return list
      .filter((entry) => entry.pm2_env.status === 'online' && entry.pid > 0)
      .map((entry) => ({ pmId: entry.pm_id, instance: Number(entry.pm2_env.NODE_APP_INSTANCE), pid: entry.pid }))
      .sort((a, b) => a.instance - b.instance);
  }

  /** Kills the daemon and its apps, and removes the temp dir. Safe to call twice. */
  async kill(): Promise<void> {
    await this.run('kill').catch(() => undefined);
    this.cleanup();
  }
}
