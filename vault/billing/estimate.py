"""What a request may use: an estimate (charged when the upstream reports nothing) and a
worst case (what its hold covers), read once from the parsed body at request time.

**Estimate** of input tokens — what an answer without usage, a stream ended early and an
abandoned hold are charged:

- text parts (native `parts[].text`, OpenAI message text, embedding inputs): 4 characters a
  token, rounded up — Google's own rule of thumb;
- an image, inline or referenced: 258 tokens, Gemini's count for an image up to 384 px
  (larger ones are tiled, 258 tokens a tile);
- other inline media: text-like data 4 bytes a token; audio, video and documents one token
  per 500 bytes of data (audio is 32 tokens a second, which is 500 bytes at 128 kbit/s;
  video about 263 tokens a second, a ~1 Mbit/s video per 500 bytes);
- files and caches named by reference (`fileData`, `cachedContent`, file ids): nothing more
  is known about them, so nothing but the 258 of an image.

**Worst case** of input tokens — what the hold covers, so that no answer can cost more:

- one token per byte of the body: any text in any script (a tokenizer never makes more tokens
  than UTF-8 bytes), the JSON around it, and inline media as base64 (1.33 tokens per byte of
  data, more than Gemini counts for any image or audio);
- plus, per inline video or document (anything not text, image or audio), 3 more tokens per
  base64 byte (258 tokens per frame-second or page can come in a few hundred bytes), and per
  inline image at least 1,120 tokens (Gemini 3's high media resolution);
- the model's whole input window when the request names input that is not in the body:
  `fileData`, `cachedContent`, OpenAI image or file URLs that are not `data:` URLs, file ids;
- never more than the model's input window (per input for embedding batches).

Output: the cap the request sends (`generationConfig.maxOutputTokens`, OpenAI `max_tokens` /
`max_completion_tokens`), else the model's maximum output, times `candidateCount` / `n`.
Thinking tokens count toward that cap on Gemini 2.5 and 3. A request with a Google Search
tool adds one grounding fee. Embeddings produce no output.

**Images** (`images.generations`) are priced per image, not per token: the hold is `n` (1
when not given) times the model's image price, all or nothing (no lower cap can make an
image cheaper), and it is also what an abandoned one is charged — Google bills the images
it made, and nobody saw how many that was.
"""

from dataclasses import dataclass, field, replace

from vault.billing.prices import PER_MILLION, Price, Rates, cost_nano
from vault.billing.usage import Usage

CHARS_PER_TOKEN = 4
IMAGE_TOKENS = 258
MEDIA_BYTES_PER_TOKEN = 500
IMAGE_WORST_TOKENS = 1_120
DENSE_MEDIA_EXTRA_PER_BYTE = 3
TEXT_LIKE = ("text/", "application/json", "application/xml", "application/x-javascript", "application/javascript")
SEARCH_TOOLS = ("googleSearch", "google_search", "googleSearchRetrieval", "google_search_retrieval")
GENERATING = ("generateContent", "streamGenerateContent", "chat.completions")
IMAGES = "images.generations"


def tokens_of_chars(chars: int) -> int:
    """Estimated tokens of `chars` characters of text (4 a token, rounded up)."""
    return -(-chars // CHARS_PER_TOKEN)


@dataclass
class Tally:
    """Input found in a body while reading it."""

    chars: int = 0
    tokens: int = 0          # estimated tokens of media and token arrays
    extra_worst: int = 0     # worst-case tokens beyond one per body byte
    referenced: bool = False  # input not in the body

    def text(self, value: object) -> None:
        if isinstance(value, str):
            self.chars += len(value)

    def media(self, mime: object, data: object) -> None:
        """One inline media part: `data` is its base64 text."""
        mime = mime.lower() if isinstance(mime, str) else ""
        data = data if isinstance(data, str) else ""
        size = len(data)
        decoded = size * 3 // 4 - data[-2:].count("=")
        if mime.startswith("image/"):
            self.tokens += IMAGE_TOKENS
            self.extra_worst += max(0, IMAGE_WORST_TOKENS - size)
        elif mime.startswith(TEXT_LIKE):
            self.tokens += tokens_of_chars(decoded)
        else:
            self.tokens += -(-decoded // MEDIA_BYTES_PER_TOKEN)
            if not mime.startswith("audio/"):
                self.extra_worst += DENSE_MEDIA_EXTRA_PER_BYTE * size

    def reference(self, mime: object = None) -> None:
        """Input named by reference: the whole window at worst, an image's tokens as estimate."""
        self.referenced = True
        if isinstance(mime, str) and mime.lower().startswith("image/"):
            self.tokens += IMAGE_TOKENS


@dataclass(frozen=True)
class RequestEstimate:
    """One request's input (estimated and worst case) and the output it may ask for."""

    input_tokens: int = 0
    worst_input_tokens: int = 0
    whole_window: bool = False
    inputs: int = 1
    output_cap: int | None = None
    candidates: int = 1
    generates: bool = False
    searched: bool = False
    images: int = 0  # images asked for (images calls only)

    def worst_input(self, input_limit: int) -> int:
        """Worst-case input tokens under the model's input window (per input of a batch)."""
        window = input_limit * max(self.inputs, 1)
        return window if self.whole_window else min(self.worst_input_tokens, window)


def dict_of(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def list_of(value: object) -> list:
    return value if isinstance(value, list) else []


def either(payload: dict, camel: str, snake: str) -> object:
    """A field spelled camelCase or snake_case (upstream accepts both)."""
    value = payload.get(camel)
    return value if value is not None else payload.get(snake)


def read_native_parts(tally: Tally, parts: object) -> None:
    """Text, inline media and references of native `parts`."""
    for part in list_of(parts):
        if not isinstance(part, dict):
            continue
        tally.text(part.get("text"))
        inline = either(part, "inlineData", "inline_data")
        if isinstance(inline, dict):
            tally.media(either(inline, "mimeType", "mime_type"), inline.get("data"))
        reference = either(part, "fileData", "file_data")
        if isinstance(reference, dict):
            tally.reference(either(reference, "mimeType", "mime_type"))


def read_native_contents(tally: Tally, payload: dict) -> None:
    """A native generate (or single embed) request's contents and system instruction."""
    for content in list_of(payload.get("contents")) + [payload.get("content")]:
        read_native_parts(tally, dict_of(content).get("parts"))
    read_native_parts(tally, dict_of(either(payload, "systemInstruction", "system_instruction")).get("parts"))
    if either(payload, "cachedContent", "cached_content"):
        tally.reference()


def read_openai_content(tally: Tally, content: object) -> None:
    """One OpenAI message's content: a string, or a list of typed parts."""
    if isinstance(content, str):
        tally.text(content)
        return
    for item in list_of(content):
        item = dict_of(item)
        tally.text(item.get("text"))
        image = item.get("image_url")
        url = dict_of(image).get("url") if isinstance(image, dict) else image
        if isinstance(url, str):
            read_url(tally, url, "image/*")
        audio = dict_of(item.get("input_audio"))
        if audio:
            tally.media(f"audio/{audio.get('format', '')}", audio.get("data"))
        file = dict_of(item.get("file"))
        if isinstance(file.get("file_data"), str):
            read_url(tally, file["file_data"], "application/octet-stream")
        elif file.get("file_id"):
            tally.reference()


def read_url(tally: Tally, url: str, mime: str) -> None:
    """A `data:` URL is inline media; any other URL is input fetched outside the body."""
    if not url.startswith("data:"):
        tally.reference(mime)
        return
    header, _, data = url.partition(",")
    declared = header[5:].split(";")[0]
    tally.media(declared or mime, data)


def read_openai_chat(tally: Tally, payload: dict) -> None:
    for message in list_of(payload.get("messages")):
        read_openai_content(tally, dict_of(message).get("content"))
    google = dict_of(payload.get("google")) or dict_of(dict_of(payload.get("extra_body")).get("google"))
    if google.get("cached_content"):
        tally.reference()


def read_openai_inputs(tally: Tally, inputs: object) -> int:
    """OpenAI embedding `input`: text, texts, or token arrays; returns how many inputs."""
    items = inputs if isinstance(inputs, list) and not all(isinstance(i, int) for i in inputs) else [inputs]
    for item in items:
        if isinstance(item, list):
            tally.tokens += len(item)
        else:
            tally.text(item)
    return len(items)


def requested_output_tokens(payload: object) -> int | None:
    """The output cap a parsed request asks for (`maxOutputTokens`, `max_tokens`, …), if any."""
    if not isinstance(payload, dict):
        return None
    config = dict_of(either(payload, "generationConfig", "generation_config"))
    candidates = [payload.get("max_completion_tokens"), payload.get("max_tokens"),
                  either(config, "maxOutputTokens", "max_output_tokens")]
    return next((value for value in candidates if is_count(value)), None)


def requested_candidates(payload: dict) -> int:
    """How many answers the request asks for (`candidateCount`, OpenAI `n`), at least 1."""
    config = dict_of(either(payload, "generationConfig", "generation_config"))
    value = either(config, "candidateCount", "candidate_count") if config else None
    value = value if value is not None else payload.get("n")
    return value if is_count(value) else 1


def is_count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def searches(tools: object) -> bool:
    """Whether the request's tools include Google Search grounding."""
    return any(isinstance(tool, dict) and any(name in tool for name in SEARCH_TOOLS) for tool in list_of(tools))


def read_request(endpoint: str, payload: object, size: int) -> RequestEstimate:
    """The estimate and worst case of the request of action `endpoint` whose parsed body is
    `payload` (`size` bytes). Reads only the parts of the body that carry input."""
    payload = dict_of(payload)
    tally, inputs = Tally(), 1
    if endpoint == IMAGES:
        return RequestEstimate(images=requested_candidates(payload))
    if endpoint == "chat.completions":
        read_openai_chat(tally, payload)
    elif endpoint == "embeddings":
        inputs = read_openai_inputs(tally, payload.get("input"))
    elif endpoint == "batchEmbedContents":
        requests = list_of(payload.get("requests"))
        for request in requests:
            read_native_contents(tally, dict_of(request))
        inputs = len(requests)
    else:
        read_native_contents(tally, payload)
    generates = endpoint in GENERATING
    return RequestEstimate(
        input_tokens=tokens_of_chars(tally.chars) + tally.tokens, worst_input_tokens=size + tally.extra_worst,
        whole_window=tally.referenced, inputs=inputs,
        output_cap=requested_output_tokens(payload) if generates else None,
        candidates=requested_candidates(payload) if generates else 1, generates=generates,
        searched=searches(payload.get("tools")),
    )


@dataclass(frozen=True)
class HoldPlan:
    """The hold of one request: the most it may take (`amount`), the least it may start with
    (`minimum`), and the output cap any amount in between covers (`cap_for`)."""

    amount: int
    minimum: int
    estimate_nano: int  # what an abandoned hold is charged: the input estimate's cost
    allowed_cap: int  # output tokens per candidate the request allows (its cap or the model's)
    worst_input: int
    candidates: int
    rates: Rates = field(default_factory=lambda: Rates(0, 0, 0))
    searched: bool = False

    def worst_usage(self, cap: int) -> Usage:
        """The usage of the worst case with `cap` output tokens per candidate."""
        audio = self.worst_input if self.rates.audio_input > self.rates.input else 0
        return Usage(prompt=self.worst_input, audio_prompt=audio, candidates=cap * self.candidates,
                     grounding_queries=int(self.searched))

    def cost(self, cap: int) -> int:
        return cost_nano(self.worst_usage(cap), self.rates)

    def cap_for(self, held: int) -> int:
        """The largest output cap per candidate whose worst case costs at most `held`."""
        if not self.allowed_cap or not self.rates.output:
            return self.allowed_cap
        fee = self.rates.grounding if self.searched else 0
        fixed = self.worst_input * max(self.rates.input, self.rates.audio_input) + PER_MILLION // 2
        budget = (held - fee + 1) * PER_MILLION - 1 - fixed
        return max(0, min(self.allowed_cap, budget // (self.candidates * self.rates.output)))


def plan_hold(request: RequestEstimate, price: Price, limits: tuple[int, int], min_output: int,
              floor_nano: int) -> HoldPlan:
    """Size the hold of `request` at `price` for a model with (input, output) token `limits`.

    The full amount covers the worst case with the request's own cap (or the model's maximum);
    the minimum covers it with `min_output` tokens (or the request's cap, if lower); `floor_nano`
    is the smallest hold.
    """
    if request.images:
        amount = request.images * (price.image or 0)
        return HoldPlan(max(amount, floor_nano), amount, amount, 0, 0, 1)
    input_limit, output_limit = limits
    worst_input = request.worst_input(input_limit)
    allowed = 0
    if request.generates:
        allowed = min(request.output_cap, output_limit) if request.output_cap else output_limit
    abandoned = cost_nano(Usage(prompt=request.input_tokens), price.rates_for(request.input_tokens))
    plan = HoldPlan(0, 0, abandoned, allowed, worst_input, request.candidates, price.rates_for(worst_input),
                    request.searched)
    return replace(plan, amount=max(plan.cost(allowed), floor_nano), minimum=plan.cost(min(min_output, allowed)))


def estimated_usage(request: RequestEstimate, output_chars: int, output_cap: int, worst_input: int,
                    grounding: int = 0) -> Usage:
    """The usage charged without the upstream's numbers: the input estimate (at most the worst
    case), and the text delivered at 4 characters a token but never more than the output cap
    the request ran with (the upstream stops there), so an estimate never costs more than the hold."""
    output = min(tokens_of_chars(output_chars), output_cap * request.candidates) if request.generates else 0
    prompt = min(request.input_tokens, worst_input)
    return Usage(prompt=prompt, candidates=output, total=prompt + output, grounding_queries=grounding)


def merged(reported: Usage, estimate: Usage) -> Usage:
    """The best of reported-so-far and the estimate: the reported prompt when there is one, the
    larger output (the delivered text can run ahead of the last usage reported)."""
    prompt = reported.prompt or estimate.prompt
    candidates = max(reported.candidates, estimate.candidates)
    if (prompt, candidates) == (reported.prompt, reported.candidates):
        return reported
    total = prompt + reported.tool_prompt + candidates + reported.thoughts
    return replace(reported, prompt=prompt, candidates=candidates, total=total,
                   grounding_queries=max(reported.grounding_queries, estimate.grounding_queries))
