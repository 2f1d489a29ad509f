// llama.cpp itself, for scripts/bench-llm and scripts/bench-gpu: loads a
// GGUF with every layer on the best device, decodes a prompt, then generates
// up to N tokens greedily one at a time (stopping at an end-of-generation
// token, as the node does), and prints, per round after a warm-up, one JSON
// line: prompt tokens, time to first token, decode rate, tokens. Built
// against the same llama.cpp the node uses: its static libraries on the CPU
// (scripts/bench-llm), or on the GPU machine the shared ones it loads:
//   g++ -O2 -std=c++17 llama_ref.cpp -I INCLUDE -L LIBS -lllama -lggml -lggml-base
//   LLAMA_BACKENDS=LIBS llama_ref MODEL.gguf N "PROMPT" [ROUNDS (3)] [THREADS [BATCH_THREADS]]
// (threads for one token and for the prompt, by default one per core).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "ggml-backend.h"
#include "llama.h"

static double now() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

int main(int argc, char ** argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s MODEL.gguf N PROMPT [ROUNDS] [THREADS [BATCH_THREADS]]\n", argv[0]);
        return 2;
    }
    const int n_gen = atoi(argv[2]);
    const std::string prompt = argv[3];
    const int rounds = argc > 4 ? atoi(argv[4]) : 3;
    const int threads = argc > 5 ? atoi(argv[5]) : (int) std::thread::hardware_concurrency();
    const int batch_threads = argc > 6 ? atoi(argv[6]) : (int) std::thread::hardware_concurrency();
    // The backend modules (CPU variants, CUDA) are in $LLAMA_BACKENDS, or
    // beside the executable.
    if (const char * dir = getenv("LLAMA_BACKENDS")) ggml_backend_load_all_from_path(dir);
    else ggml_backend_load_all();
    llama_backend_init();
    llama_model * model = llama_model_load_from_file(argv[1], llama_model_default_params());
    if (!model) {
        fprintf(stderr, "could not load %s\n", argv[1]);
        return 1;
    }
    const llama_vocab * vocab = llama_model_get_vocab(model);
    const int n_vocab = llama_vocab_n_tokens(vocab);
    std::vector<llama_token> tokens(prompt.size() + 8);
    const int n = llama_tokenize(vocab, prompt.c_str(), prompt.size(), tokens.data(), tokens.size(), true, true);
    tokens.resize(n);
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = 4096;
    // The node's thread counts.
    cp.n_threads = threads;
    cp.n_threads_batch = batch_threads;
    for (int round = 0; round <= rounds; round++) {  // round 0 warms up
        llama_context * ctx = llama_init_from_model(model, cp);
        const double t0 = now();
        if (llama_decode(ctx, llama_batch_get_one(tokens.data(), tokens.size()))) return 1;
        double first = 0;
        llama_token next = 0;
        int made = 0;
        for (int i = 0; i < n_gen; i++) {
            const float * logits = llama_get_logits_ith(ctx, -1);
            next = 0;
            for (int v = 1; v < n_vocab; v++) if (logits[v] > logits[next]) next = v;
            if (i == 0) first = now();
            made++;
            if (llama_vocab_is_eog(vocab, next)) break;
            if (i + 1 < n_gen && llama_decode(ctx, llama_batch_get_one(&next, 1))) return 1;
        }
        const double end = now();
        if (round > 0)
            printf("{\"prompt_tokens\": %d, \"ttft_ms\": %.3f, \"decode_tok_s\": %.3f, \"tokens\": %d}\n", n,
                   (first - t0) * 1000, (made - 1) / (end - first), made);
        llama_free(ctx);
    }
    llama_model_free(model);
    return 0;
}
