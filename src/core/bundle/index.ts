export * from './bundle.js'
export * from './install.js'
