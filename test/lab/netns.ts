/** The namespace lab lives in src/core/lab (the demo uses it too); the tests import it from here. */
export * from '../../src/core/lab/netns.js'
