export * from './compile.js'
export * from './policy-file.js'
export * from './protect.js'
export * from './recommend.js'
