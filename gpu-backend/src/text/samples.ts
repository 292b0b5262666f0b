/** Texts that exercise byte-level tokenization: multi-byte characters, grapheme clusters and odd whitespace. */
export const SAMPLE_TEXTS: Record<string, string> = {
  ascii: 'The quick brown fox jumps over the lazy dog. 1234567890 !@#$%^&*()_+-={}[]|\\:";\'<>?,./~`',
  cjk: '你好，世界。今天天气很好，我们一起去公园散步吧。こんにちは、世界。안녕하세요 세계',
  emoji: '🎉🚀😀👍❤️🌍 👩‍👩‍👧‍👦 🇯🇵🇫🇷 👍🏽 🏳️‍🌈',
  combining: 'e\u0301 a\u0308 n\u0303 \u0915\u094d\u0937 Z\u0351\u0363\u036b\u0352 \u05e9\u05c1\u05b8',
  mixed: 'Hello 世界! 🎉 café — naïve résumé; tab\tnewline\n\ncarriage\r\nend  double  spaces   ',
  controls: '\u0000\u0001\u001f\u007f \u00a0\u00ad\u2028\ufeffBOM',
};
