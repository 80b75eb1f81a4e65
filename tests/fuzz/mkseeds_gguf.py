#!/usr/bin/env python3
# mkseeds_gguf.py - write the seed corpus of fuzz_gguf: small GGUF v3 files, whole and cut short.
# The files are checked in; run this again only to change them: python3 mkseeds_gguf.py DIR
import struct
import sys

U8, I8, U16, I16, U32, I32, F32, BOOL, STR, ARR, U64, I64, F64 = range(13)
PACK = {U8: '<B', I8: '<b', U16: '<H', I16: '<h', U32: '<I', I32: '<i', F32: '<f', BOOL: '<?',
        U64: '<Q', I64: '<q', F64: '<d'}


def s(text):
    b = text.encode()
    return struct.pack('<Q', len(b)) + b


def val(t, v):
    if t == STR:
        return s(v)
    if t == ARR:
        et, items = v
        return struct.pack('<IQ', et, len(items)) + b''.join(val(et, x) for x in items)
    return struct.pack(PACK[t], v)


def gguf(kvs, tensors, align=32):
    out = b'GGUF' + struct.pack('<IQQ', 3, len(tensors), len(kvs))
    for key, t, v in kvs:
        out += s(key) + struct.pack('<I', t) + val(t, v)
    data = b''
    for name, ttype, dims, nbytes in tensors:
        out += s(name) + struct.pack('<I', len(dims)) + b''.join(struct.pack('<Q', d) for d in dims)
        out += struct.pack('<IQ', ttype, len(data))
        data += b'\x01' * nbytes
        data += b'\x00' * (-len(data) % align)
    out += b'\x00' * (-len(out) % align)
    return out + data


llama = [
    ('general.architecture', STR, 'llama'),
    ('general.name', STR, 'fuzz seed'),
    ('general.file_type', U32, 7),
    ('llama.context_length', U32, 2048),
    ('llama.block_count', U32, 2),
    ('llama.attention.head_count', U32, 4),
    ('llama.attention.head_count_kv', ARR, (U32, [2, 2])),
    ('llama.embedding_length', U64, 64),
    ('llama.feed_forward_length', I32, 128),
    ('llama.rope.freq_base', F32, 10000.0),
    ('llama.use_parallel_residual', BOOL, True),
    ('general.size', I64, -5),
    ('general.ratio', F64, 0.5),
    ('general.u8', U8, 200), ('general.i8', I8, -3), ('general.u16', U16, 60000),
    ('general.i16', I16, -300),
    ('tokenizer.ggml.tokens', ARR, (STR, ['<s>', '</s>', 'a'])),
    ('tokenizer.ggml.scores', ARR, (F32, [0.0, 0.0, -1.0])),
    ('tokenizer.chat_template', STR, '{{ messages }}'),
]
tensors = [('token_embd.weight', 0, [4, 2], 32), ('blk.0.attn_q.weight', 8, [32, 2], 68)]

seeds = {
    'llama': gguf(llama, tensors),
    'empty': gguf([], []),
    'kv-only': gguf(llama[:3], []),
    'aligned-64': gguf([('general.alignment', U32, 64)] + llama[:2], tensors, 64),
    'no-data': gguf(llama, tensors)[:-64],
    'cut-header': gguf(llama, tensors)[:200],
}
for name, data in seeds.items():
    with open(f'{sys.argv[1]}/{name}.gguf', 'wb') as f:
        f.write(data)
