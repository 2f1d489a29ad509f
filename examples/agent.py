"""An agent's path through Vouch with the official `openai` client: a JSON
answer that obeys a schema, a tool call whose arguments obey the tool's
schema, both saved and verified offline with `vouch verify`.

    python examples/agent.py [BASE_URL]     # default http://127.0.0.1:8080

Run by the test suite (tests/python/test_openai.py) against `vouch up`.
"""

import json
import os
import subprocess
import sys

from openai import OpenAI

base = sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:8080"
client = OpenAI(base_url=base + "/v1", api_key="unused")
vouch = os.environ.get("VOUCH_BIN", "vouch")

# 1. Structured output: the sampler only picks tokens the schema allows,
#    and the receipt binds the schema.
schema = {"type": "object",
          "properties": {"city": {"type": "string", "maxLength": 24},
                         "country": {"type": "string", "maxLength": 24}},
          "required": ["city", "country"], "additionalProperties": False}
raw = client.chat.completions.with_raw_response.create(
    model="smollm2-135m", temperature=0, max_tokens=64,
    messages=[{"role": "user", "content": "Name a city in Japan."}],
    response_format={"type": "json_schema", "json_schema": {"name": "city", "schema": schema}})
answer = json.loads(raw.parse().choices[0].message.content)
print("structured:", answer)
with open("city.json", "w") as f:
    f.write(raw.http_response.text)

# 2. A tool call: the arguments obey the tool's parameters.
tools = [{"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city now.",
    "parameters": {"type": "object",
                   "properties": {"city": {"type": "string", "maxLength": 24}},
                   "required": ["city"], "additionalProperties": False}}}]
raw = client.chat.completions.with_raw_response.create(
    model="smollm2-135m", temperature=0, max_tokens=64, tools=tools, tool_choice="required",
    messages=[{"role": "user", "content": "What is the weather in Paris?"}])
call = raw.parse().choices[0].message.tool_calls[0]
print("tool call:", call.function.name, json.loads(call.function.arguments))
with open("call.json", "w") as f:
    f.write(raw.http_response.text)

# 3. Offline: the receipt signs the request (messages, schema, tools, seed)
#    and the tokens, and the content or tool call is what those tokens say.
for saved in ("city.json", "call.json"):
    subprocess.run([vouch, "verify", saved], check=True)
