/**
 * SQL injection detection by tokenizing a value as SQL and judging the token sequence (the
 * approach of libinjection; this is independent code with its own grammar rules, no fingerprint
 * list).
 *
 * A value is an injection when, read as the continuation of a SQL statement, it first ends the
 * literal it was placed in (a "context break") and then goes on with SQL that changes the query:
 *
 *   context    the value is pasted...           break token
 *   'as-is'    as a number / bare expression    a leading number, variable, NULL/TRUE, or `)`
 *   "'"        inside a '...' string literal    the string closed by the value's own `'`
 *   '"'        inside a "..." string literal    the string closed by the value's own `"`
 *
 * After the break (and any `)` closing the application's parentheses) one of these must follow:
 *   - a logic operator (AND/OR/XOR/&&/||) and an expression that is a comparison, a function
 *     call, a subquery, or is followed by a comment, and the rest parses as a statement tail;
 *   - UNION [ALL|DISTINCT] SELECT (possibly parenthesized);
 *   - `;` and a statement (SELECT, DROP TABLE, INSERT INTO, EXEC ..., WAITFOR ..., ...);
 *   - a comment (string contexts only: `admin'--` truncates the rest of the query);
 *   - an arithmetic/comparison operator applied to a subquery, a time delay or (in string
 *     contexts) any function call;
 *   - a clause keyword: ORDER BY / GROUP BY / HAVING / LIMIT / PROCEDURE / INTO OUTFILE.
 * Anywhere in the value: a time-delay call with well-formed SQL arguments (SLEEP(5),
 * BENCHMARK(n, expr), PG_SLEEP(5), WAITFOR DELAY '0:0:5') in an operand position, and (as-is) a
 * value that is a parenthesized subquery.
 *
 * The grammar is why prose passes: "O'Brien" breaks the string but goes on with a bare word; a
 * sentence mentioning "union select" has no break before it; "sleep(8 hours)" has no valid
 * argument list.
 *
 * Hot path: the tokenizer fills reused typed arrays (no object per token); keyword lookups slice
 * the word (bounded by MAX_WORD_CHARS). Work is linear in the value length; tokens after
 * MAX_TOKENS are not looked at (the break always comes first, so padding cannot hide an attack
 * behind the cap: string padding is one token).
 */

/** Tokens kept per context (the judgement only needs the statement's beginning). */
export const MAX_TOKENS = 64
/** Longest value examined (chars); longer values are judged on their first MAX_INPUT_CHARS. */
export const MAX_INPUT_CHARS = 64 * 1024
/** Words longer than this are barewords without a keyword lookup. */
export const MAX_WORD_CHARS = 32
/** Expression nesting followed by the parser before it gives up on a context. */
export const MAX_DEPTH = 24

// token classes (also the fingerprint characters)
const T_STRING = 0x73 // s
const T_NUMBER = 0x6e // n
const T_KEYWORD = 0x6b // k: other keywords
const T_UNION = 0x55 // U: UNION INTERSECT EXCEPT MINUS
const T_STMT = 0x45 // E: a statement start (SELECT INSERT UPDATE DELETE DROP ...)
const T_CLAUSE = 0x43 // C: ORDER GROUP HAVING LIMIT PROCEDURE INTO WHERE FROM ...
const T_VALUE = 0x31 // 1: NULL TRUE FALSE CURRENT_USER ...
const T_TIME = 0x54 // T: a time-delay function name followed by '('
const T_FUNC = 0x66 // f: a word followed by '('
const T_LOGIC = 0x26 // &: AND OR XOR && ||
const T_OP = 0x6f // o: comparison and arithmetic operators, LIKE IN IS BETWEEN ...
const T_NOT = 0x21 // !: NOT ! (unary)
const T_COMMENT = 0x63 // c
const T_SEMI = 0x3b // ;
const T_LPAREN = 0x28 // (
const T_RPAREN = 0x29 // )
const T_COMMA = 0x2c // ,
const T_VAR = 0x76 // v: @x @@x
const T_BARE = 0x62 // b: identifier
const T_OTHER = 0x78 // x

export type SqliContext = 'as-is' | "'" | '"'

export interface SqliResult {
  /** true when some context reads as an injection */
  hit: boolean
  /** the context that matched */
  context?: SqliContext
  /** folded token-class fingerprint of that context (comments inside dropped) */
  fingerprint?: string
  /** which grammar rule decided */
  reason?: string
}

type Kw = {cls: number; id: string}

const KEYWORDS = new Map<string, Kw>()
function kw(cls: number, words: string): void {
  for (const w of words.split(/\s+/)) if (w) KEYWORDS.set(w, {cls, id: w})
}
kw(T_LOGIC, 'and or xor')
kw(T_NOT, 'not')
kw(T_OP, 'like rlike regexp ilike similar in is between div mod sounds collate escape glob match')
kw(T_UNION, 'union intersect except minus')
kw(T_STMT, 'select insert update delete drop create alter truncate exec execute declare shutdown replace merge call grant revoke rename load handler do waitfor')
kw(T_CLAUSE, 'order group having limit procedure into from where offset fetch top outfile dumpfile')
kw(T_VALUE, 'null true false current_user current_date current_time current_timestamp localtime localtimestamp session_user system_user unknown')
kw(T_KEYWORD, 'by all distinct as asc desc on join inner outer left right cross natural using set values table database schema case when then else end delay time binary interval exists any some cast convert char set if elseif begin while xp_cmdshell')

/** Time-delay functions and the argument counts that make a call well-formed. */
const TIME_FUNCS = new Map<string, number[]>([
  ['sleep', [1]],
  ['pg_sleep', [1]],
  ['pg_sleep_for', [1]],
  ['benchmark', [2]],
  ['dbms_lock.sleep', [1]],
  ['dbms_session.sleep', [1]],
  ['dbms_pipe.receive_message', [2]],
  ['randomblob', [1]],
])

/** Functions common in injections (for the as-is `1 op f(...)` rule, where any call is too loose). */
const SQL_FUNCS = new Set(
  ('version database schema user current_user system_user session_user load_file extractvalue updatexml ' +
   'concat concat_ws group_concat char chr ascii ord substring substr mid left right length hex unhex ' +
   'if ifnull nullif coalesce count floor rand exp md5 sha1 cast convert isnull db_name host_name ' +
   'suser_name suser_sname is_srvrolemember utl_inaddr.get_host_name utl_http.request ctxsys.drithsx.sn ' +
   'xmltype make_set elt row gtid_subset json_keys geometrycollection polygon multipoint linestring ' +
   'name_const xp_cmdshell sys_context openrowset opendatasource sysdate now @@version').split(' '),
)

/** Statement keywords that make `; <stmt>` a stacked query, with the token class that must follow (0 = anything). */
const STACKED = new Map<string, string>([
  ['select', ''], ['insert', 'into'], ['update', ''], ['delete', 'from'], ['drop', 'table database schema user view procedure function trigger index'],
  ['create', 'table database schema user view procedure function trigger index or'], ['alter', 'table database user login'],
  ['truncate', ''], ['exec', ''], ['execute', ''], ['declare', ''], ['shutdown', ''], ['waitfor', 'delay time'],
  ['grant', ''], ['revoke', ''], ['call', ''], ['load', 'data'], ['set', ''], ['replace', 'into'], ['rename', 'table'],
  ['handler', ''], ['do', ''],
])

/**
 * A reusable tokenizer + judge. One instance per thread of use; `detect()` is not reentrant.
 */
export class SqliDetector {
  private readonly cls = new Uint8Array(MAX_TOKENS)
  private readonly tStart = new Int32Array(MAX_TOKENS)
  private readonly tEnd = new Int32Array(MAX_TOKENS)
  /** keyword id (lower-case) for keyword / function tokens, '' otherwise */
  private readonly word: string[] = new Array<string>(MAX_TOKENS).fill('')
  /** 1 when a string token ran to the end of the input without its closing quote */
  private readonly open = new Uint8Array(MAX_TOKENS)
  private n = 0
  private s = ''
  private len = 0
  // parser state
  private pos = 0
  private depth = 0
  private failed = false
  private sawCompare = false
  private sawCall = false
  private sawKnownCall = false
  private sawSubquery = false
  private sawTime = false
  private ctx: SqliContext = 'as-is'

  /** Judge one value in all three contexts. */
  detect(input: string): SqliResult {
    const s = input.length > MAX_INPUT_CHARS ? input.slice(0, MAX_INPUT_CHARS) : input
    if (s.length < 2) return {hit: false}
    const hasSingle = s.indexOf("'") >= 0
    const hasDouble = s.indexOf('"') >= 0
    const hasBackslash = s.indexOf('\\') >= 0
    let r = this.judgeContext(s, 'as-is', true)
    if (r) return r
    if (hasSingle) {
      r = this.judgeContext(s, "'", true)
      if (r) return r
      if (hasBackslash && (r = this.judgeContext(s, "'", false))) return r
    }
    if (hasDouble) {
      r = this.judgeContext(s, '"', true)
      if (r) return r
      if (hasBackslash && (r = this.judgeContext(s, '"', false))) return r
    }
    return {hit: false}
  }

  /** The folded fingerprint of `input` read in `ctx` (for tests and evidence). */
  fingerprint(input: string, ctx: SqliContext, backslashEscapes = true): string {
    this.tokenize(input.length > MAX_INPUT_CHARS ? input.slice(0, MAX_INPUT_CHARS) : input, ctx, backslashEscapes)
    return this.fp()
  }

  private fp(): string {
    let out = ''
    for (let i = 0; i < this.n; i++) out += String.fromCharCode(this.cls[i])
    return out
  }

  private judgeContext(s: string, ctx: SqliContext, backslashEscapes: boolean): SqliResult | undefined {
    this.tokenize(s, ctx, backslashEscapes)
    const reason = this.judge()
    if (reason === undefined) return undefined
    return {hit: true, context: ctx, fingerprint: this.fp(), reason}
  }

  // ---- tokenizer ----

  private push(cls: number, start: number, end: number, word = '', open = 0): void {
    if (this.n >= MAX_TOKENS) return
    // inline comments followed by more code are whitespace: drop the previous comment token
    if (this.n > 0 && this.cls[this.n - 1] === T_COMMENT && this.open[this.n - 1] === 0) this.n--
    const i = this.n++
    this.cls[i] = cls
    this.tStart[i] = start
    this.tEnd[i] = end
    this.word[i] = word
    this.open[i] = open
  }

  /** a closed inline comment is remembered as 'c' with open=0 (dropped when code follows); a comment to the end has open=1 */
  private tokenize(s: string, ctx: SqliContext, bs: boolean): void {
    this.s = s
    this.len = s.length
    this.n = 0
    this.ctx = ctx
    let i = 0
    if (ctx !== 'as-is') {
      const end = this.scanString(s, 0, ctx.charCodeAt(0), bs)
      this.push(T_STRING, 0, end, '', end > s.length ? 1 : 0)
      i = end
    }
    let execComment = 0
    const len = s.length
    while (i < len && this.n < MAX_TOKENS) {
      const c = s.charCodeAt(i)
      // whitespace (incl. \v \f, NBSP, NUL which MySQL treats as blank in some builds)
      if (c <= 0x20 || c === 0xa0 || c === 0x7f) {
        i++
        continue
      }
      if (c === 0x27 || c === 0x22 || c === 0x60) { // ' " `
        const end = this.scanString(s, i + 1, c, bs)
        if (c === 0x60) this.push(T_BARE, i, Math.min(end, len))
        else this.push(T_STRING, i, Math.min(end, len), '', end > len ? 1 : 0)
        i = Math.min(end, len)
        continue
      }
      if (c === 0x5b) { // [ident] (T-SQL)
        const close = s.indexOf(']', i + 1)
        const end = close < 0 ? len : close + 1
        this.push(T_BARE, i, end)
        i = end
        continue
      }
      if (c === 0x2d && s.charCodeAt(i + 1) === 0x2d) { // --
        this.push(T_COMMENT, i, len, '', 1)
        break
      }
      if (c === 0x23) { // # (MySQL)
        this.push(T_COMMENT, i, len, '', 1)
        break
      }
      if (c === 0x2f && s.charCodeAt(i + 1) === 0x2a) { // /* ... */
        if (s.charCodeAt(i + 2) === 0x21) { // /*! MySQL executable comment: its content is code
          let j = i + 3
          while (j < len && j < i + 9 && isDigit(s.charCodeAt(j))) j++
          execComment++
          i = j
          continue
        }
        const close = s.indexOf('*/', i + 2)
        if (close < 0) {
          this.push(T_COMMENT, i, len, '', 1)
          break
        }
        this.push(T_COMMENT, i, close + 2, '', 0)
        i = close + 2
        continue
      }
      if (c === 0x2a && s.charCodeAt(i + 1) === 0x2f && execComment > 0) { // */ closing /*!
        execComment--
        i += 2
        continue
      }
      if (isDigit(c) || (c === 0x2e && isDigit(s.charCodeAt(i + 1)))) {
        const end = scanNumber(s, i)
        this.push(T_NUMBER, i, end)
        i = end
        continue
      }
      if (c === 0x40) { // @var @@var @'x' @`x`
        let j = i + 1
        if (s.charCodeAt(j) === 0x40) j++
        const q = s.charCodeAt(j)
        if (q === 0x27 || q === 0x22 || q === 0x60) j = Math.min(this.scanString(s, j + 1, q, bs), len)
        else while (j < len && isWordChar(s.charCodeAt(j))) j++
        this.push(T_VAR, i, j)
        i = j
        continue
      }
      if (isWordStart(c)) {
        // x'41' b'01' n'abc' e'..' : typed string literals
        const q = s.charCodeAt(i + 1)
        if ((q === 0x27 || q === 0x22) && 'xXbBnNeE'.indexOf(s[i]) >= 0) {
          const end = this.scanString(s, i + 2, q, bs)
          this.push(T_STRING, i, Math.min(end, len), '', end > len ? 1 : 0)
          i = Math.min(end, len)
          continue
        }
        let j = i + 1
        while (j < len && (isWordChar(s.charCodeAt(j)) || (s.charCodeAt(j) === 0x2e && j + 1 < len && isWordStart(s.charCodeAt(j + 1)))
          || (s.charCodeAt(j) === 0x2e && s.charCodeAt(j + 1) === 0x2e))) j++
        this.pushWord(s, i, j)
        i = j
        continue
      }
      // operators
      const c2 = s.charCodeAt(i + 1)
      if ((c === 0x26 && c2 === 0x26) || (c === 0x7c && c2 === 0x7c)) {
        this.push(T_LOGIC, i, i + 2, c === 0x26 ? 'and' : 'or')
        i += 2
        continue
      }
      switch (c) {
        case 0x28: this.push(T_LPAREN, i, i + 1); i++; continue
        case 0x29: this.push(T_RPAREN, i, i + 1); i++; continue
        case 0x2c: this.push(T_COMMA, i, i + 1); i++; continue
        case 0x3b: this.push(T_SEMI, i, i + 1); i++; continue
        case 0x21: // ! or !=
          if (c2 === 0x3d) {
            this.push(T_OP, i, i + 2, '!=')
            i += 2
          } else {
            this.push(T_NOT, i, i + 1, '!')
            i++
          }
          continue
        case 0x3d: case 0x3c: case 0x3e: { // = < > <= >= <> <=> << >>
          let j = i + 1
          while (j < len && j < i + 3 && (s.charCodeAt(j) === 0x3d || s.charCodeAt(j) === 0x3e || s.charCodeAt(j) === 0x3c)) j++
          this.push(T_OP, i, j, s.slice(i, j))
          i = j
          continue
        }
        case 0x3a: // := or ::
          if (c2 === 0x3d || c2 === 0x3a) {
            this.push(T_OP, i, i + 2, c2 === 0x3d ? '=' : '::')
            i += 2
            continue
          }
          break
        case 0x2b: case 0x2d: case 0x2a: case 0x2f: case 0x25: case 0x5e: case 0x7c: case 0x26: case 0x7e:
          this.push(T_OP, i, i + 1, s[i])
          i++
          continue
      }
      this.push(T_OTHER, i, i + 1)
      i++
    }
    // a trailing closed inline comment stays (it ends the statement like an open one)
  }

  private pushWord(s: string, i: number, j: number): void {
    const wlen = j - i
    // a word followed by '(' is a call
    let k = j
    while (k < this.len && (s.charCodeAt(k) <= 0x20 || s.charCodeAt(k) === 0xa0)) k++
    const call = s.charCodeAt(k) === 0x28
    if (wlen > MAX_WORD_CHARS) {
      this.push(call ? T_FUNC : T_BARE, i, j)
      return
    }
    const w = s.slice(i, j).toLowerCase()
    if (call && TIME_FUNCS.has(w)) {
      this.push(T_TIME, i, j, w)
      return
    }
    const e = KEYWORDS.get(w)
    if (e !== undefined) {
      // keywords that are also functions: IF( CHAR( CONVERT( CAST( EXISTS( REPLACE( LEFT( RIGHT( INSERT(
      if (call && (e.cls === T_KEYWORD || w === 'replace' || w === 'insert')) {
        this.push(T_FUNC, i, j, w)
        return
      }
      this.push(e.cls, i, j, w)
      return
    }
    this.push(call ? T_FUNC : T_BARE, i, j, w)
  }

  /** index just past the closing quote, or len+1 when the string is not closed */
  private scanString(s: string, from: number, q: number, bs: boolean): number {
    const len = s.length
    let i = from
    while (i < len) {
      const c = s.charCodeAt(i)
      if (c === 0x5c && bs && q !== 0x60) {
        i += 2
        continue
      }
      if (c === q) {
        if (s.charCodeAt(i + 1) === q) {
          i += 2
          continue
        }
        return i + 1
      }
      i++
    }
    return len + 1
  }

  // ---- judge ----

  private at(i: number): number {
    return i < this.n ? this.cls[i] : 0
  }

  private judge(): string | undefined {
    const n = this.n
    if (n === 0) return undefined
    const quoted = this.ctx !== 'as-is'
    // anywhere: a well-formed time delay in an operand position
    for (let i = 0; i < n; i++) {
      if (this.cls[i] === T_TIME) {
        const prev = i === 0 ? 0 : this.cls[i - 1]
        if ((i === 0 && !quoted) || prev === T_LOGIC || prev === T_OP || prev === T_LPAREN || prev === T_COMMA || prev === T_SEMI || prev === T_NOT
          || prev === T_STMT) {
          if (this.wellFormedCall(i)) return 'time_delay'
        }
      } else if (this.cls[i] === T_STMT && this.word[i] === 'waitfor') {
        const w = this.word[i + 1]
        if ((w === 'delay' || w === 'time') && this.at(i + 2) === T_STRING) return 'time_delay'
      }
    }
    let i: number
    if (quoted) {
      if (this.open[0] === 1) return undefined // the value never leaves the string
      i = 1
    } else {
      // as-is break: [+-]* (number | variable | NULL...) or ')' ; or a leading parenthesized subquery
      i = 0
      while (i < n && this.cls[i] === T_OP && (this.word[i] === '-' || this.word[i] === '+')) i++
      const c = this.at(i)
      if (c === T_LPAREN && this.at(i + 1) === T_STMT && this.word[i + 1] === 'select') return 'subquery_value'
      if (c === T_NUMBER || c === T_VAR || c === T_VALUE) i++
      else if (c !== T_RPAREN) return undefined
    }
    while (this.at(i) === T_RPAREN) i++
    const c = this.at(i)
    switch (c) {
      case T_COMMENT:
        return quoted ? 'break_comment' : undefined
      case T_UNION: {
        let j = i + 1
        if (this.word[j] === 'all' || this.word[j] === 'distinct') j++
        while (this.at(j) === T_LPAREN) j++
        if (this.at(j) !== T_STMT || this.word[j] !== 'select') return undefined
        // a select list must follow; the application's closing quote alone is not one
        // ("what is 'union select'" is a search term)
        j++
        if (j >= n || (this.cls[j] === T_STRING && this.open[j] === 1 && j === n - 1)) return undefined
        return 'union_select'
      }
      case T_SEMI:
        return this.stacked(i + 1) ? 'stacked_query' : undefined
      case T_LOGIC:
        return this.logic(i + 1) ? 'boolean' : undefined
      case T_OP:
        return this.operator(i) ? 'operator_expression' : undefined
      case T_CLAUSE:
        return this.clause(i) ? 'clause' : undefined
      case T_NOT:
        return undefined
    }
    return undefined
  }

  private stacked(i: number): boolean {
    if (this.at(i) !== T_STMT && !(this.at(i) === T_KEYWORD && this.word[i] === 'set')) {
      if (!(this.at(i) === T_FUNC && (this.word[i] === 'exec' || this.word[i] === 'execute'))) return false
    }
    const need = STACKED.get(this.word[i])
    if (need === undefined) return false
    if (need === '') {
      if (this.word[i] === 'select') {
        // SELECT needs an operand after it
        const c = this.at(i + 1)
        return c !== 0 && c !== T_SEMI && c !== T_OTHER
      }
      return true
    }
    const next = this.word[i + 1]
    return i + 1 < this.n && next !== '' && need.split(' ').includes(next)
  }

  private resetParse(at: number): void {
    this.pos = at
    this.depth = 0
    this.failed = false
    this.sawCompare = false
    this.sawCall = false
    this.sawKnownCall = false
    this.sawSubquery = false
    this.sawTime = false
  }

  /** after `AND/OR`: an expression that changes the WHERE clause, then a valid tail */
  private logic(i: number): boolean {
    this.resetParse(i)
    this.expr()
    if (this.failed || this.pos === i) return false
    const tail = this.tail()
    if (tail === 0) return false
    if (this.sawCompare || this.sawCall || this.sawSubquery || this.sawTime) return true
    // a lone value: only with a comment or a following statement cutting the query's rest
    return tail === 2
  }

  /** after the break: `op expr` where expr holds a subquery, a delay or a call */
  private operator(i: number): boolean {
    this.resetParse(i + 1)
    this.operand()
    if (this.failed) return false
    // continue the expression (e.g. `' - sleep(5) - '` or `1*(select ...)=1`)
    this.binTail()
    if (this.failed || this.tail() === 0) return false
    if (this.sawSubquery || this.sawTime) return true
    return this.ctx !== 'as-is' ? this.sawCall : this.sawKnownCall
  }

  /** ORDER BY n / GROUP BY / HAVING expr / LIMIT n / PROCEDURE f( / INTO OUTFILE|DUMPFILE|@var */
  private clause(i: number): boolean {
    const w = this.word[i]
    const quoted = this.ctx !== 'as-is'
    if (w === 'order' || w === 'group') {
      if (this.word[i + 1] !== 'by') return false
      const c = this.at(i + 2)
      if (c === T_NUMBER) {
        this.resetParse(i + 2)
        this.exprList()
        return !this.failed && this.tail() !== 0
      }
      if (!quoted) return false
      if (c === T_BARE || c === T_FUNC || c === T_LPAREN || c === T_TIME) {
        this.resetParse(i + 2)
        this.exprList()
        if (this.failed) return false
        const t = this.tail()
        if (t === 2) return true
        // another clause that is an injection itself: `' group by password having 1=1--`
        if (t !== 3) return false
        let p = this.pos
        while (this.at(p) === T_RPAREN) p++
        return p > i && this.clause(p)
      }
      return false
    }
    if (w === 'having' || w === 'limit') {
      this.resetParse(i + 1)
      if (w === 'limit') this.exprList()
      else this.expr()
      const t = this.failed ? 0 : this.tail()
      if (t === 0) return false
      return w === 'limit' ? this.at(i + 1) === T_NUMBER && (quoted || t >= 2) : this.sawCompare || this.sawCall
    }
    if (w === 'procedure') return this.at(i + 1) === T_FUNC
    if (w === 'into') {
      const nx = this.word[i + 1]
      return nx === 'outfile' || nx === 'dumpfile' || (this.at(i + 1) === T_VAR && (quoted || this.tail() !== 0))
    }
    return false
  }

  /**
   * What follows a complete expression: 0 = not SQL; 1 = end of input (or the application's
   * closing quote); 2 = a statement cut: comment, `;`, UNION; 3 = a clause keyword (ORDER BY,
   * GROUP BY, LIMIT, HAVING, PROCEDURE, INTO).
   */
  private tail(): number {
    let p = this.pos
    while (this.at(p) === T_RPAREN) p++
    if (p >= this.n) return 1
    const c = this.cls[p]
    if (c === T_COMMENT || c === T_SEMI || c === T_UNION) return 2
    if (c === T_CLAUSE) {
      const w = this.word[p]
      return w === 'order' || w === 'group' || w === 'limit' || w === 'having' || w === 'procedure' || w === 'into' ? 3 : 0
    }
    // the application's own closing quote: an unterminated string of the context's quote at the end
    if (c === T_STRING && this.open[p] === 1 && p === this.n - 1) return 1
    // chained boolean: `' or 1=1 or '`
    if (c === T_LOGIC) {
      this.pos = p + 1
      const saved = [this.sawCompare, this.sawCall, this.sawSubquery]
      this.expr()
      if (this.failed) return 0
      this.sawCompare ||= saved[0]
      this.sawCall ||= saved[1]
      this.sawSubquery ||= saved[2]
      return this.tail()
    }
    return 0
  }

  /** expr (, expr)* */
  private exprList(): void {
    this.expr()
    while (!this.failed && this.at(this.pos) === T_COMMA) {
      this.pos++
      this.expr()
    }
  }

  /** expr := operand (binop operand)* */
  private expr(): void {
    if (++this.depth > MAX_DEPTH) {
      this.failed = true
      return
    }
    this.operand()
    this.binTail()
    this.depth--
  }

  private binTail(): void {
    while (!this.failed && this.pos < this.n) {
      const c = this.cls[this.pos]
      const w = this.word[this.pos]
      if (c === T_OP) {
        if (isComparison(w)) this.sawCompare = true
        this.pos++
        if (w === 'is') {
          if (this.at(this.pos) === T_NOT) this.pos++
          if (this.at(this.pos) === T_VALUE) {
            this.pos++
            this.sawCompare = true
            continue
          }
          this.failed = true
          return
        }
        if (w === 'sounds' && this.word[this.pos] === 'like') this.pos++
        this.operand()
        continue
      }
      if (c === T_NOT && w === 'not') {
        // NOT LIKE / NOT IN / NOT BETWEEN / NOT REGEXP
        if (this.at(this.pos + 1) === T_OP) {
          this.pos++
          continue
        }
        return
      }
      if (c === T_LOGIC && this.depth > 1) {
        // inside parentheses the whole boolean expression belongs to the operand
        this.pos++
        this.operand()
        continue
      }
      return
    }
  }

  /** operand := unary* primary */
  private operand(): void {
    if (this.failed) return
    if (++this.depth > MAX_DEPTH) {
      this.failed = true
      return
    }
    let p = this.pos
    while (p < this.n && (this.cls[p] === T_NOT || (this.cls[p] === T_OP && (this.word[p] === '-' || this.word[p] === '+' || this.word[p] === '~'))
      || (this.cls[p] === T_KEYWORD && (this.word[p] === 'binary' || this.word[p] === 'exists')))) p++
    this.pos = p
    if (p >= this.n) {
      // the application's closing quote completes `' or 'x'='` only as a string; a bare end is not an operand
      this.failed = true
      this.depth--
      return
    }
    const c = this.cls[p]
    switch (c) {
      case T_NUMBER: case T_VAR: case T_VALUE: case T_BARE:
        this.pos++
        break
      case T_STRING:
        this.pos++
        while (this.at(this.pos) === T_STRING) this.pos++ // adjacent literals concatenate
        break
      case T_FUNC: case T_TIME: {
        this.sawCall = true
        if (c === T_TIME) this.sawTime = true
        const w = this.word[p]
        if (SQL_FUNCS.has(w) || c === T_TIME) this.sawKnownCall = true
        this.pos++
        this.parenArgs()
        break
      }
      case T_LPAREN:
        this.pos++
        if (this.at(this.pos) === T_STMT && this.word[this.pos] === 'select') {
          this.sawSubquery = true
          this.skipBalanced()
        } else {
          this.expr()
          while (!this.failed && this.at(this.pos) === T_COMMA) {
            this.pos++
            this.expr()
          }
          if (this.at(this.pos) === T_RPAREN) this.pos++
          else if (this.pos < this.n) this.failed = true
        }
        break
      case T_KEYWORD:
        if (this.word[p] === 'case') {
          this.sawCall = true
          this.pos++
          this.skipUntilEnd()
          break
        }
        if (this.word[p] === 'interval') {
          this.pos++
          this.operand()
          if (this.at(this.pos) === T_BARE) this.pos++
          break
        }
        this.failed = true
        break
      case T_STMT:
        if (this.word[p] === 'select') { // SELECT as an operand without parentheses (e.g. after UNION in a subquery)
          this.sawSubquery = true
          this.skipBalanced()
          break
        }
        this.failed = true
        break
      default:
        this.failed = true
    }
    this.depth--
  }

  /** after a function name: `( args )`, tolerating a missing `)` at the end of input */
  private parenArgs(): void {
    if (this.at(this.pos) !== T_LPAREN) {
      this.failed = true
      return
    }
    this.pos++
    if (this.at(this.pos) === T_RPAREN) {
      this.pos++
      return
    }
    // COUNT(*)
    if (this.at(this.pos) === T_OP && this.word[this.pos] === '*' && this.at(this.pos + 1) === T_RPAREN) {
      this.pos += 2
      return
    }
    if (this.at(this.pos) === T_STMT && this.word[this.pos] === 'select') {
      this.sawSubquery = true
      this.skipBalanced()
      return
    }
    this.expr()
    while (!this.failed && this.at(this.pos) === T_COMMA) {
      this.pos++
      this.expr()
    }
    // CAST(x AS type) / CONVERT(x USING charset): skip the type name (and its precision)
    while (!this.failed && (this.word[this.pos] === 'as' || this.word[this.pos] === 'using') && this.pos < this.n) {
      this.pos++
      const c = this.at(this.pos)
      if (c === T_BARE || c === T_KEYWORD || c === T_FUNC) {
        this.pos++
        if (this.at(this.pos) === T_LPAREN) this.skipBalanced0()
      }
    }
    if (this.failed) return
    if (this.at(this.pos) === T_RPAREN) this.pos++
    else if (this.pos < this.n) this.failed = true
  }

  /** at the token after '(' that opened a subquery: skip to just past the matching ')' (or the end) */
  private skipBalanced(): void {
    let d = 1
    while (this.pos < this.n) {
      const c = this.cls[this.pos++]
      if (c === T_LPAREN) d++
      else if (c === T_RPAREN && --d === 0) return
      else if (c === T_TIME) this.sawTime = true
    }
  }

  private skipBalanced0(): void {
    this.pos++
    this.skipBalanced()
  }

  private skipUntilEnd(): void {
    let d = 1
    while (this.pos < this.n) {
      const w = this.word[this.pos++]
      if (w === 'case') d++
      else if (w === 'end' && --d === 0) return
    }
  }

  /** T( args ) with an argument count the function accepts and every argument an expression */
  private wellFormedCall(i: number): boolean {
    const arities = TIME_FUNCS.get(this.word[i])
    if (arities === undefined) return false
    this.resetParse(i + 1)
    if (this.at(this.pos) !== T_LPAREN) return false
    this.pos++
    let args = 0
    if (this.at(this.pos) !== T_RPAREN) {
      for (;;) {
        this.expr()
        if (this.failed) return false
        args++
        if (this.at(this.pos) !== T_COMMA) break
        this.pos++
      }
    }
    if (this.at(this.pos) === T_RPAREN) this.pos++
    else if (this.pos < this.n) return false
    return arities.includes(args)
  }
}

function isComparison(w: string): boolean {
  switch (w) {
    case '=': case '<': case '>': case '<=': case '>=': case '<>': case '!=': case '<=>': case '==':
    case 'like': case 'rlike': case 'regexp': case 'ilike': case 'similar': case 'in': case 'is': case 'between':
    case 'sounds': case 'glob': case 'match':
      return true
  }
  return false
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39
}

function isWordStart(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c === 0x5f || c === 0x24 || c >= 0xc0
}

function isWordChar(c: number): boolean {
  return isWordStart(c) || isDigit(c)
}

function scanNumber(s: string, i: number): number {
  const len = s.length
  if (s.charCodeAt(i) === 0x30 && (s.charCodeAt(i + 1) | 0x20) === 0x78) { // 0x..
    let j = i + 2
    while (j < len && isHex(s.charCodeAt(j))) j++
    return j
  }
  if (s.charCodeAt(i) === 0x30 && (s.charCodeAt(i + 1) | 0x20) === 0x62 && (s.charCodeAt(i + 2) === 0x30 || s.charCodeAt(i + 2) === 0x31)) {
    let j = i + 2
    while (j < len && (s.charCodeAt(j) === 0x30 || s.charCodeAt(j) === 0x31)) j++
    return j
  }
  let j = i
  while (j < len && isDigit(s.charCodeAt(j))) j++
  if (s.charCodeAt(j) === 0x2e) {
    j++
    while (j < len && isDigit(s.charCodeAt(j))) j++
  }
  if ((s.charCodeAt(j) | 0x20) === 0x65) {
    let k = j + 1
    if (s.charCodeAt(k) === 0x2b || s.charCodeAt(k) === 0x2d) k++
    if (isDigit(s.charCodeAt(k))) {
      while (k < len && isDigit(s.charCodeAt(k))) k++
      j = k
    }
  }
  return j
}

function isHex(c: number): boolean {
  return isDigit(c) || (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46)
}

const shared = new SqliDetector()

/** Is `value` a SQL injection (in any of the three contexts)? */
export function detectSqli(value: string): SqliResult {
  return shared.detect(value)
}

/** Verdicts remembered for isSqli (the same User-Agent, cookie or argument recurs request after request). */
export const MAX_SQLI_MEMO = 4096
/** Longest value whose verdict is remembered (longer ones are judged every time). */
export const MAX_SQLI_MEMO_CHARS = 256

/**
 * value -> verdict; emptied when full (the detector is pure, so a verdict never goes stale). At
 * most MAX_SQLI_MEMO keys of MAX_SQLI_MEMO_CHARS: about 1 MB.
 */
const memo = new Map<string, boolean>()

/** Boolean form for the rule matcher. */
export function isSqli(value: string): boolean {
  if (value.length > MAX_SQLI_MEMO_CHARS) return shared.detect(value).hit
  const known = memo.get(value)
  if (known !== undefined) return known
  const hit = shared.detect(value).hit
  if (memo.size >= MAX_SQLI_MEMO) memo.clear()
  // keyed by a copy: a value can be a slice of a far larger text (a request body) that the memo
  // must not keep alive (the concatenation is flattened into a new string before it is sliced)
  memo.set((' ' + value).slice(1), hit)
  return hit
}
