"""A tiny, randomly initialised SmolVLM folder built offline: a real (small) transformer, not a mock.

SmolVLA reads its VLM's config, processor and tokenizer from a local folder (policy.vlm_path); this builds
one in seconds so that SmolVLA's code path runs in tests without downloading anything.
"""

from pathlib import Path

CORPUS = ["pick up the red cube and place it on the blue square", "move the ball to the green area"] * 20
ROWS_COLS = [f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7)]


def build_tiny_vlm(folder: Path) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, SmolVLMConfig, SmolVLMProcessor
    from transformers.models.smolvlm import SmolVLMImageProcessor, SmolVLMVideoProcessor

    specials = ["<|endoftext|>", "<|im_start|>", "<end_of_utterance>", "<fake_token_around_image>", "<global-img>",
                "<image>", "<video>", "<pad>", *ROWS_COLS]  # fmt: skip
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tokenizer.train_from_iterator(CORPUS, trainer)
    hf_tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, bos_token="<|im_start|>", eos_token="<end_of_utterance>", pad_token="<pad>",
        unk_token="<|endoftext|>",
        extra_special_tokens={"fake_image_token": "<fake_token_around_image>", "global_image_token": "<global-img>",
                              "image_token": "<image>", "end_of_utterance_token": "<end_of_utterance>"},
    )  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    SmolVLMConfig(
        vocab_size=len(hf_tokenizer), image_token_id=hf_tokenizer.convert_tokens_to_ids("<image>"), scale_factor=2,
        pad_token_id=hf_tokenizer.pad_token_id,
        text_config=dict(model_type="llama", vocab_size=len(hf_tokenizer), hidden_size=64, intermediate_size=128,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                         max_position_embeddings=512),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                           image_size=64, patch_size=16),
    ).save_pretrained(folder)  # fmt: skip
    SmolVLMProcessor(
        image_processor=SmolVLMImageProcessor(size={"longest_edge": 64}, max_image_size={"longest_edge": 64}),
        tokenizer=hf_tokenizer, video_processor=SmolVLMVideoProcessor(), image_seq_len=4,
    ).save_pretrained(folder)  # fmt: skip
    return folder
