/**
 * PM2 in cluster mode: 4 instances of examples/cluster.js sharing one status
 * file. PM2 is the primary; it sets NODE_APP_INSTANCE (0..3) in each
 * instance, and wsgi-status gives each the slot `id` NODE_APP_INSTANCE + 1,
 * so ids stay stable across restarts, scaling and `pm2 reload` (the new
 * process shows in its predecessor's slot from its first write, counters
 * carried on; what the old one answers while it drains counts in the same slot).
 *
 *   npm run build
 *   npx pm2 start examples/ecosystem.config.cjs
 *   cat /dev/shm/wsgi-status-example.json
 *   npx pm2 reload wsgi-status-example   # respawn_count goes up, counters carry on
 *   npx pm2 delete wsgi-status-example
 */
module.exports = {
  apps: [
    {
      name: 'wsgi-status-example',
      script: './examples/cluster.js',
      // Resolve the script and the `wsgi-status` package from the project root whatever the shell's directory.
      cwd: `${__dirname}/..`,
      exec_mode: 'cluster',
      instances: 4,
      // PM2 sends SIGINT then, after kill_timeout, SIGKILL: leave time for the graceful close.
      kill_timeout: 5000,
      env: {
        PORT: 3000,
        STATUS_FILE: '/dev/shm/wsgi-status-example.json',
      },
    },
  ],
};
