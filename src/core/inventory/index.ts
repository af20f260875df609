export * from './inventory.js'
export * from './oui.js'
