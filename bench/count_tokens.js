// Token counts of OpenAI's o200k_base encoding (the GPT-4o family's), one per input string.
// Reads a JSON array of strings on stdin, prints a JSON array of counts.
const { encode } = require("gpt-tokenizer/encoding/o200k_base");
let input = "";
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  process.stdout.write(JSON.stringify(JSON.parse(input).map((text) => encode(text).length)));
});
