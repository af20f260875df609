export * from './anomaly.js'
export * from './eve.js'
export * from './reader.js'
export * from './writer.js'
