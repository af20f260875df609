/** Real servers for the namespace lab: moved to src/core/lab (the demo uses them too). */
export * from '../../src/core/lab/servers.js'
