"""GGUF format constants, copied from llama.cpp's ``gguf`` Python package (version 0.19.0).

Importing ``gguf`` itself pulls in numpy (its reader and writer), ~100 ms that ``slmplan --help``,
``catalog`` and every estimate would pay for a handful of integers and strings. These tables are the
part slmplan uses; ``tests/test_ggufconst.py`` checks that they equal the installed package's values.
"""

from __future__ import annotations

from enum import IntEnum


class GGMLQuantizationType(IntEnum):
    F32 = 0
    F16 = 1
    Q4_0 = 2
    Q4_1 = 3
    Q5_0 = 6
    Q5_1 = 7
    Q8_0 = 8
    Q8_1 = 9
    Q2_K = 10
    Q3_K = 11
    Q4_K = 12
    Q5_K = 13
    Q6_K = 14
    Q8_K = 15
    IQ2_XXS = 16
    IQ2_XS = 17
    IQ3_XXS = 18
    IQ1_S = 19
    IQ4_NL = 20
    IQ3_S = 21
    IQ2_S = 22
    IQ4_XS = 23
    I8 = 24
    I16 = 25
    I32 = 26
    I64 = 27
    F64 = 28
    IQ1_M = 29
    BF16 = 30
    TQ1_0 = 34
    TQ2_0 = 35
    MXFP4 = 39
    NVFP4 = 40
    Q1_0 = 41


# GGML type -> (block size in elements, bytes per block)
GGML_QUANT_SIZES: dict[GGMLQuantizationType, tuple[int, int]] = {
    GGMLQuantizationType.F32: (1, 4), GGMLQuantizationType.F16: (1, 2), GGMLQuantizationType.Q4_0: (32, 18),
    GGMLQuantizationType.Q4_1: (32, 20), GGMLQuantizationType.Q5_0: (32, 22), GGMLQuantizationType.Q5_1: (32, 24),
    GGMLQuantizationType.Q8_0: (32, 34), GGMLQuantizationType.Q8_1: (32, 40), GGMLQuantizationType.Q2_K: (256, 84),
    GGMLQuantizationType.Q3_K: (256, 110), GGMLQuantizationType.Q4_K: (256, 144), GGMLQuantizationType.Q5_K: (256, 176),
    GGMLQuantizationType.Q6_K: (256, 210), GGMLQuantizationType.Q8_K: (256, 292), GGMLQuantizationType.IQ2_XXS: (256, 66),
    GGMLQuantizationType.IQ2_XS: (256, 74), GGMLQuantizationType.IQ3_XXS: (256, 98), GGMLQuantizationType.IQ1_S: (256, 50),
    GGMLQuantizationType.IQ4_NL: (32, 18), GGMLQuantizationType.IQ3_S: (256, 110), GGMLQuantizationType.IQ2_S: (256, 82),
    GGMLQuantizationType.IQ4_XS: (256, 136), GGMLQuantizationType.I8: (1, 1), GGMLQuantizationType.I16: (1, 2),
    GGMLQuantizationType.I32: (1, 4), GGMLQuantizationType.I64: (1, 8), GGMLQuantizationType.F64: (1, 8),
    GGMLQuantizationType.IQ1_M: (256, 56), GGMLQuantizationType.BF16: (1, 2), GGMLQuantizationType.TQ1_0: (256, 54),
    GGMLQuantizationType.TQ2_0: (256, 66), GGMLQuantizationType.MXFP4: (32, 17), GGMLQuantizationType.NVFP4: (64, 36),
    GGMLQuantizationType.Q1_0: (128, 18),
}


class GGUFValueType(IntEnum):
    UINT8 = 0
    INT8 = 1
    UINT16 = 2
    INT16 = 3
    UINT32 = 4
    INT32 = 5
    FLOAT32 = 6
    BOOL = 7
    STRING = 8
    ARRAY = 9
    UINT64 = 10
    INT64 = 11
    FLOAT64 = 12


class LlamaFileType(IntEnum):
    ALL_F32 = 0
    MOSTLY_F16 = 1
    MOSTLY_Q4_0 = 2
    MOSTLY_Q4_1 = 3
    MOSTLY_Q8_0 = 7
    MOSTLY_Q5_0 = 8
    MOSTLY_Q5_1 = 9
    MOSTLY_Q2_K = 10
    MOSTLY_Q3_K_S = 11
    MOSTLY_Q3_K_M = 12
    MOSTLY_Q3_K_L = 13
    MOSTLY_Q4_K_S = 14
    MOSTLY_Q4_K_M = 15
    MOSTLY_Q5_K_S = 16
    MOSTLY_Q5_K_M = 17
    MOSTLY_Q6_K = 18
    MOSTLY_IQ2_XXS = 19
    MOSTLY_IQ2_XS = 20
    MOSTLY_Q2_K_S = 21
    MOSTLY_IQ3_XS = 22
    MOSTLY_IQ3_XXS = 23
    MOSTLY_IQ1_S = 24
    MOSTLY_IQ4_NL = 25
    MOSTLY_IQ3_S = 26
    MOSTLY_IQ3_M = 27
    MOSTLY_IQ2_S = 28
    MOSTLY_IQ2_M = 29
    MOSTLY_IQ4_XS = 30
    MOSTLY_IQ1_M = 31
    MOSTLY_BF16 = 32
    MOSTLY_TQ1_0 = 36
    MOSTLY_TQ2_0 = 37
    MOSTLY_MXFP4_MOE = 38
    MOSTLY_NVFP4 = 39
    MOSTLY_Q1_0 = 40
    GUESSED = 1024


class Keys:
    """Metadata key names (``{arch}`` is replaced by the architecture), as ``gguf.Keys``."""

    class General:
        ARCHITECTURE = 'general.architecture'
        NAME = 'general.name'
        LICENSE = 'general.license'
        FILE_TYPE = 'general.file_type'
        ALIGNMENT = 'general.alignment'
        QUANTIZATION_VERSION = 'general.quantization_version'
        SIZE_LABEL = 'general.size_label'
        BASENAME = 'general.basename'

    class Tokenizer:
        LIST = 'tokenizer.ggml.tokens'
        MODEL = 'tokenizer.ggml.model'
        CHAT_TEMPLATE = 'tokenizer.chat_template'

    class LLM:
        VOCAB_SIZE = '{arch}.vocab_size'
        CONTEXT_LENGTH = '{arch}.context_length'
        EMBEDDING_LENGTH = '{arch}.embedding_length'
        EMBEDDING_LENGTH_OUT = '{arch}.embedding_length_out'
        FEATURES_LENGTH = '{arch}.features_length'
        BLOCK_COUNT = '{arch}.block_count'
        LEADING_DENSE_BLOCK_COUNT = '{arch}.leading_dense_block_count'
        FEED_FORWARD_LENGTH = '{arch}.feed_forward_length'
        EXPERT_FEED_FORWARD_LENGTH = '{arch}.expert_feed_forward_length'
        EXPERT_SHARED_FEED_FORWARD_LENGTH = '{arch}.expert_shared_feed_forward_length'
        EXPERT_CHUNK_FEED_FORWARD_LENGTH = '{arch}.expert_chunk_feed_forward_length'
        USE_PARALLEL_RESIDUAL = '{arch}.use_parallel_residual'
        TENSOR_DATA_LAYOUT = '{arch}.tensor_data_layout'
        EXPERT_COUNT = '{arch}.expert_count'
        EXPERT_USED_COUNT = '{arch}.expert_used_count'
        EXPERT_SHARED_COUNT = '{arch}.expert_shared_count'
        EXPERT_GROUP_COUNT = '{arch}.expert_group_count'
        EXPERT_GROUP_USED_COUNT = '{arch}.expert_group_used_count'
        EXPERT_WEIGHTS_SCALE = '{arch}.expert_weights_scale'
        EXPERT_WEIGHTS_NORM = '{arch}.expert_weights_norm'
        EXPERT_GATING_FUNC = '{arch}.expert_gating_func'
        EXPERT_GROUP_SCALE = '{arch}.expert_group_scale'
        EXPERTS_PER_GROUP = '{arch}.experts_per_group'
        MOE_EVERY_N_LAYERS = '{arch}.moe_every_n_layers'
        MOE_LATENT_SIZE = '{arch}.moe_latent_size'
        NEXTN_PREDICT_LAYERS = '{arch}.nextn_predict_layers'
        NUM_DEEPSTACK_LAYERS = '{arch}.n_deepstack_layers'
        POOLING_TYPE = '{arch}.pooling_type'
        LOGIT_SCALE = '{arch}.logit_scale'
        DECODER_START_TOKEN_ID = '{arch}.decoder_start_token_id'
        DECODER_BLOCK_COUNT = '{arch}.decoder_block_count'
        ATTN_LOGIT_SOFTCAPPING = '{arch}.attn_logit_softcapping'
        ROUTER_LOGIT_SOFTCAPPING = '{arch}.router_logit_softcapping'
        FINAL_LOGIT_SOFTCAPPING = '{arch}.final_logit_softcapping'
        SWIN_NORM = '{arch}.swin_norm'
        RESCALE_EVERY_N_LAYERS = '{arch}.rescale_every_n_layers'
        TIME_MIX_EXTRA_DIM = '{arch}.time_mix_extra_dim'
        TIME_DECAY_EXTRA_DIM = '{arch}.time_decay_extra_dim'
        RESIDUAL_SCALE = '{arch}.residual_scale'
        EMBEDDING_SCALE = '{arch}.embedding_scale'
        TOKEN_SHIFT_COUNT = '{arch}.token_shift_count'
        INTERLEAVE_MOE_LAYER_STEP = '{arch}.interleave_moe_layer_step'
        FULL_ATTENTION_INTERVAL = '{arch}.full_attention_interval'
        ACTIVATION_SPARSITY_SCALE = '{arch}.activation_sparsity_scale'
        ALTUP_ACTIVE_IDX = '{arch}.altup.active_idx'
        ALTUP_NUM_INPUTS = '{arch}.altup.num_inputs'
        EMBD_LENGTH_PER_LAYER_INP = '{arch}.embedding_length_per_layer_input'
        SWIGLU_CLAMP_EXP = '{arch}.swiglu_clamp_exp'
        SWIGLU_CLAMP_SHEXP = '{arch}.swiglu_clamp_shexp'
        DENSE_FEAT_IN_SIZE = '{arch}.{dense}_feat_in'
        DENSE_FEAT_OUT_SIZE = '{arch}.{dense}_feat_out'

    class Attention:
        HEAD_COUNT = '{arch}.attention.head_count'
        HEAD_COUNT_KV = '{arch}.attention.head_count_kv'
        MAX_ALIBI_BIAS = '{arch}.attention.max_alibi_bias'
        CLAMP_KQV = '{arch}.attention.clamp_kqv'
        KEY_LENGTH = '{arch}.attention.key_length'
        VALUE_LENGTH = '{arch}.attention.value_length'
        LAYERNORM_EPS = '{arch}.attention.layer_norm_epsilon'
        LAYERNORM_RMS_EPS = '{arch}.attention.layer_norm_rms_epsilon'
        GROUPNORM_EPS = '{arch}.attention.group_norm_epsilon'
        GROUPNORM_GROUPS = '{arch}.attention.group_norm_groups'
        CAUSAL = '{arch}.attention.causal'
        Q_LORA_RANK = '{arch}.attention.q_lora_rank'
        KV_LORA_RANK = '{arch}.attention.kv_lora_rank'
        DECAY_LORA_RANK = '{arch}.attention.decay_lora_rank'
        ICLR_LORA_RANK = '{arch}.attention.iclr_lora_rank'
        VALUE_RESIDUAL_MIX_LORA_RANK = '{arch}.attention.value_residual_mix_lora_rank'
        GATE_LORA_RANK = '{arch}.attention.gate_lora_rank'
        REL_BUCKETS_COUNT = '{arch}.attention.relative_buckets_count'
        SLIDING_WINDOW = '{arch}.attention.sliding_window'
        SCALE = '{arch}.attention.scale'
        OUTPUT_SCALE = '{arch}.attention.output_scale'
        TEMPERATURE_LENGTH = '{arch}.attention.temperature_length'
        KEY_LENGTH_MLA = '{arch}.attention.key_length_mla'
        VALUE_LENGTH_MLA = '{arch}.attention.value_length_mla'
        KEY_LENGTH_SWA = '{arch}.attention.key_length_swa'
        VALUE_LENGTH_SWA = '{arch}.attention.value_length_swa'
        SHARED_KV_LAYERS = '{arch}.attention.shared_kv_layers'
        SLIDING_WINDOW_PATTERN = '{arch}.attention.sliding_window_pattern'
        TEMPERATURE_SCALE = '{arch}.attention.temperature_scale'

    class Rope:
        DIMENSION_COUNT = '{arch}.rope.dimension_count'
        DIMENSION_COUNT_SWA = '{arch}.rope.dimension_count_swa'
        DIMENSION_SECTIONS = '{arch}.rope.dimension_sections'
        FREQ_BASE = '{arch}.rope.freq_base'
        FREQ_BASE_SWA = '{arch}.rope.freq_base_swa'
        SCALING_TYPE = '{arch}.rope.scaling.type'
        SCALING_FACTOR = '{arch}.rope.scaling.factor'
        SCALING_ALPHA = '{arch}.rope.scaling.alpha'
        SCALING_ATTN_FACTOR = '{arch}.rope.scaling.attn_factor'
        SCALING_ORIG_CTX_LEN = '{arch}.rope.scaling.original_context_length'
        SCALING_FINETUNED = '{arch}.rope.scaling.finetuned'
        SCALING_YARN_LOG_MUL = '{arch}.rope.scaling.yarn_log_multiplier'
        SCALING_YARN_EXT_FACTOR = '{arch}.rope.scaling.yarn_ext_factor'
        SCALING_YARN_ATTN_FACTOR = '{arch}.rope.scaling.yarn_attn_factor'
        SCALING_YARN_BETA_FAST = '{arch}.rope.scaling.yarn_beta_fast'
        SCALING_YARN_BETA_SLOW = '{arch}.rope.scaling.yarn_beta_slow'

    class SSM:
        CONV_KERNEL = '{arch}.ssm.conv_kernel'
        INNER_SIZE = '{arch}.ssm.inner_size'
        STATE_SIZE = '{arch}.ssm.state_size'
        TIME_STEP_RANK = '{arch}.ssm.time_step_rank'
        GROUP_COUNT = '{arch}.ssm.group_count'
        DT_B_C_RMS = '{arch}.ssm.dt_b_c_rms'
