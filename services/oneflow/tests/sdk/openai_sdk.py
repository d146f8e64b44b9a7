"""Drives a running OneFlow with the official `openai` Python SDK, unchanged.

Usage: python3 openai_sdk.py BASE_URL API_KEY
Exits non-zero (with a traceback) on the first expectation that fails.
"""

import io
import sys

import openai

base, key = sys.argv[1], sys.argv[2]
client = openai.OpenAI(base_url=base + "/v1", api_key=key, max_retries=0, timeout=30)

# Chat, plain.
reply = client.chat.completions.create(model="mock-gpt", messages=[{"role": "user", "content": "hello sdk"}])
assert "hello sdk" in reply.choices[0].message.content, reply
assert reply.usage.prompt_tokens > 0 and reply.usage.completion_tokens > 0, reply.usage

# Chat, streamed, with usage at the end.
chunks = list(
    client.chat.completions.create(
        model="mock-gpt",
        messages=[{"role": "user", "content": "stream for the sdk"}],
        stream=True,
        stream_options={"include_usage": True},
    )
)
text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
assert "stream for the sdk" in text, text
assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0, chunks[-1]

# Embeddings, float and base64.
emb = client.embeddings.create(model="mock-embed", input=["a", "b"])
assert len(emb.data) == 2 and len(emb.data[0].embedding) == 16, emb
emb64 = client.embeddings.create(model="mock-embed", input="a", encoding_format="base64")
assert isinstance(emb64.data[0].embedding, str), emb64

# Models.
ids = [m.id for m in client.models.list()]
assert "mock-gpt" in ids and "mock-embed" in ids, ids
assert client.models.retrieve("mock-gpt").id == "mock-gpt"

# Each error surfaces as the SDK's matching exception.
bad = openai.OpenAI(base_url=base + "/v1", api_key="ofk_wrong", max_retries=0)
try:
    bad.models.list()
    raise AssertionError("a bad key was accepted")
except openai.AuthenticationError as e:
    assert e.status_code == 401 and e.code == "invalid_api_key", e

try:
    client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "x"}])
    raise AssertionError("an unknown model was accepted")
except openai.NotFoundError as e:
    assert e.code == "model_not_found", e

try:
    client.chat.completions.create(model="mock-gpt", messages=[])
    raise AssertionError("empty messages were accepted")
except openai.BadRequestError as e:
    assert e.param == "messages", e

try:
    client.chat.completions.create(
        model="mock-gpt", messages=[{"role": "user", "content": "x"}], max_tokens=10**12
    )
    raise AssertionError("a request beyond the balance was accepted")
except openai.APIStatusError as e:
    assert e.status_code == 402 and e.code == "insufficient_credits", e

try:
    stream = client.chat.completions.create(
        model="mock-gpt",
        messages=[{"role": "user", "content": "one two three four five"}],
        stream=True,
        metadata={"mock_cut_after": "2"},
    )
    for _ in stream:
        pass
    raise AssertionError("a cut stream ended cleanly")
except openai.APIError as e:
    assert "broke off" in str(e.message), e

# Audio: text to speech and speech to text, unchanged SDK calls.
speech = client.audio.speech.create(
    model="mock-tts", voice="alloy", input="hello from the sdk", response_format="wav"
)
audio = speech.read()
assert audio[:4] == b"RIFF" and audio[8:12] == b"WAVE", audio[:16]
transcript = client.audio.transcriptions.create(
    model="mock-whisper", file=("hello.wav", io.BytesIO(audio), "audio/wav")
)
assert transcript.text, transcript
srt = client.audio.transcriptions.create(
    model="mock-whisper", file=("hello.wav", io.BytesIO(audio)), response_format="srt"
)
assert "-->" in srt, srt
translation = client.audio.translations.create(model="mock-whisper", file=("hello.wav", io.BytesIO(audio)))
assert translation.text, translation
try:
    client.audio.transcriptions.create(model="mock-whisper", file=("fake.wav", io.BytesIO(b"not audio at all")))
    raise AssertionError("a file that is not audio was accepted")
except openai.BadRequestError as e:
    assert e.param == "file", e

# Windows are fixed UTC minutes: even if one boundary passes mid-loop, 200 calls
# are enough to fill a window of 60.
limited = False
for _ in range(200):
    try:
        client.models.retrieve("mock-gpt")
        client.chat.completions.create(model="mock-gpt-mini", messages=[{"role": "user", "content": "x"}])
    except openai.RateLimitError as e:
        assert e.response.headers.get("retry-after"), e.response.headers
        limited = True
        break
assert limited, "60 requests per minute were not enforced"
print("openai sdk: ok")
