/**
 * A small built-in text the tiny tokenizer learns its merges from: everyday English, a little code and
 * numbers, and a few lines of Chinese, Japanese and emoji so that some merges join parts of multi-byte
 * characters (which the streaming decoder must then hold until a character is complete).
 */
export const TINY_CORPUS = `
The quick brown fox jumps over the lazy dog. The dog was not amused, and the fox ran into the forest.
Once upon a time there was a small model that wanted to learn how to speak. It read the same story
again and again, and every time it read the story it learned a little more about the words in it.
In the morning the sun rises in the east, and in the evening it sets in the west. People wake up,
make their coffee, read the news, and go to work. Some of them walk, some of them take the train,
and some of them ride a bicycle through the city while the streets are still quiet.
What is the answer to the question? Think about it step by step, then write the answer at the end.
The student thought for a while and said: "I think the answer is forty two, but I am not sure."
The teacher smiled. "That is a good start. Can you explain why you think so?" The student nodded.
A language model predicts the next token from the tokens that came before it. When it is aligned,
it follows instructions, answers questions, and refuses to help with things that would cause harm.
Reasoning takes time: a model that thinks longer can often solve harder problems, while a model that
answers quickly saves tokens. Realignment lets the user choose how much of each they want.
Here is a list of things to remember: the meeting is on Monday at ten, the report is due on Friday,
and the team dinner is next Thursday evening at seven. Please bring the slides and the new numbers.
We measured the throughput at batch sizes of one, eight and thirty two, and the latency of each step.
The results were better than we expected: 1024 tokens per second at batch 32, and 96 at batch 1.
function add(a, b) { return a + b; }
const result = add(3, 4); // result is 7
for (let i = 0; i < 10; i++) { console.log("step", i, "of", 10); }
if (x > 0 && y < 100) { print("inside the range"); } else { print("outside"); }
def greet(name):
    return f"Hello, {name}!"
print(greet("world"))
user: Can you help me write a short poem about the sea?
assistant: Of course. The sea is wide, the sea is deep, it sings the sailors off to sleep.
user: Thank you! Now make it rhyme with the word "moon".
assistant: The tide will turn beneath the moon, and bring the ships back home soon.
你好，世界。今天天气很好，我们一起去公园散步吧。我喜欢读书，也喜欢写字。
中文和英文都可以。这是一个小小的测试，请不要担心。谢谢你的帮助！
こんにちは、世界。今日はいい天気ですね。ありがとうございます。
Emoji time: 🎉 🚀 😀 👍 ❤️ 🌍 — party, rocket, smile, thumbs up, heart and the whole world 🌍🎉.
Numbers and symbols: 3.14159, 2.71828, 100%, $25.00, #hashtag, @mention, e-mail@example.com.
The end. Thank you for reading, and have a nice day!
`;
