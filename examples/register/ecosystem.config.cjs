/**
 * PM2 in cluster mode, no code change: 4 instances of app.js, each loaded
 * with the register. PM2 resolves `--import` against its daemon's working
 * directory, so the register is given by its absolute path.
 *
 *   npx pm2 start examples/register/ecosystem.config.cjs
 *   cat /dev/shm/wsgi-status-register.json
 *   npx pm2 delete wsgi-status-register
 */
module.exports = {
  apps: [
    {
      name: 'wsgi-status-register',
      script: './examples/register/app.js',
      cwd: `${__dirname}/../..`,
      exec_mode: 'cluster',
      instances: 4,
      node_args: `--import ${require.resolve('wsgi-status/register')}`,
      env: {
        PORT: 3000,
        WSGI_STATUS_FILE: '/dev/shm/wsgi-status-register.json',
        WSGI_STATUS_INTERVAL: 1000,
      },
    },
  ],
};
