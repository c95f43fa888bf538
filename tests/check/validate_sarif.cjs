// validate_sarif.cjs NODE_DIR FILE - validates FILE against the SARIF 2.1.0
// JSON schema (sarif-2.1.0-rtm.5.json of @microsoft/jest-sarif, a JSON
// Schema draft-04 document) with ajv, all installed in NODE_DIR/node_modules
// by setup_schemas.sh.  Prints "valid", or each error; exit 0 valid, 1 not,
// 2 on a bad setup or input.
'use strict';
const fs = require('fs');
const path = require('path');
const { createRequire } = require('module');

const [dir, file] = process.argv.slice(2);
if (!dir || !file) {
  console.error('usage: node validate_sarif.cjs NODE_DIR FILE');
  process.exit(2);
}
const req = createRequire(path.join(path.resolve(dir), 'package.json'));
const Ajv04 = req('ajv-draft-04');
const addFormats = req('ajv-formats');
const schemaPath = req.resolve(
  '@microsoft/jest-sarif/lib/schemas/sarif-2.1.0-rtm.5.json');
const schema = JSON.parse(fs.readFileSync(schemaPath, 'utf8'));
if (schema.$schema !== 'http://json-schema.org/draft-04/schema#') {
  console.error(`unexpected meta-schema ${schema.$schema} in ${schemaPath}`);
  process.exit(2);
}
// strict: false - the schema is third-party; strictness concerns how a
// schema is written, not how thoroughly a document is checked.
// unicodeRegExp: false - the schema's pattern for a language tag,
// "^[a-zA-Z]{2}|^[a-zA-Z]{2}-[a-zA-Z]{2}]?$", has a stray ']' that is a
// literal in an ECMA-262 regexp but an error with the 'u' flag.
const ajv = new Ajv04({ allErrors: true, strict: false, unicodeRegExp: false });
addFormats(ajv);  // "uri", "uri-reference", "date-time" are checked too
let validate;
try {
  validate = ajv.compile(schema);
} catch (e) {
  console.error(`cannot compile ${schemaPath}: ${e.message}`);
  process.exit(2);
}
let doc;
try {
  doc = JSON.parse(fs.readFileSync(file, 'utf8'));
} catch (e) {
  console.error(`${file}: not JSON: ${e.message}`);
  process.exit(2);
}
if (validate(doc)) {
  console.log('valid');
  process.exit(0);
}
for (const e of validate.errors)
  console.log(`${e.instancePath || '/'}: ${e.message} ${JSON.stringify(e.params)}`);
process.exit(1);
