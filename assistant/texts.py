"""User-facing text of the actions, in one place (static replies are responses in bot/domain.yml).

Composed answers (a guide's checklist, a clause) are built in answer.py from the knowledge base;
what is here is the conversation's own wording: the booking form, hand-overs, refusals.
"""

HOTLINE = "12345"

FALLBACK = (
    "抱歉，我暂时没有找到与您的问题对应的办事指南或政策条款，不想给您不准确的信息。"
    f"您可以换个说法再问一次，或拨打{HOTLINE}政务服务热线转人工咨询。"
)
# Every channel refuses a longer message at its edge (settings.max_message_chars; web/deps.py too_long).
TOO_LONG = "消息过长（最多 {limit} 字），请精简后分几次发送。"
EMPTY = "您好，请问您想咨询什么事项？例如：“结婚登记要带什么材料”“护照要多少钱”。"
UNKNOWN_MATTER = (
    "抱歉，没有找到“{name}”这个事项的办事指南，厦门的政务服务事项中没有这一项，我不想给您不准确的信息。"
    f"如确有需要，请拨打{HOTLINE}政务服务热线咨询。"
)

# --- hand-over ---
HANDOFF_COMPLAINT = (f"很抱歉给您带来不便。您的投诉已记录并转人工处理；也可拨打{HOTLINE}政务服务热线投诉。"
                     "热线受理后会转交责任单位办理，并在规定时限内回复您办理结果。")
HANDOFF_UNANSWERED = f"抱歉，这个问题我暂时答不好，已为您转接人工服务。您也可以直接拨打{HOTLINE}政务服务热线。"
HANDOFF_ASKED = f"已为您转接人工服务，工作人员会查看您刚才的问题后回复您。您也可以直接拨打{HOTLINE}政务服务热线。"

# --- booking form ---
BOOK_NOW = "现在预约"
ASK_CENTRE = "好的，为您预约办事{matter}。请问您想去哪个服务中心办理？"
ASK_DATE = "请问您想预约哪一天去{centre}？可以说“明天”“下周三”“12月3号”，或选择："
ASK_SLOT = "请选择时段："
ASK_CONFIRM = "请确认预约信息：\n事项：{matter}\n地点：{where}\n姓名：{name}\n手机：{phone}"
NO_MATTER = "未说明（可直接回复事项名称补充，如“护照”）"
CONFIRM_BUTTON, CANCEL_BUTTON = "确认预约", "不约了"
BAD_CENTRE = "没有识别出服务中心，请说区名（如“湖里区”）或“市行政服务中心”。"
BAD_DATE = "没有识别出日期，可以说“明天”“下周三”或“12月3号”。"
DATE_UNREADABLE = "抱歉，这个日期我没能解析出来（已记录），请换个说法，例如“12月3号”，或从下面选择："
SLOT_FULL_DAY = "{day}{centre}的预约名额已满（部分名额留给现场取号）。"
PICK_DATE = "您可以选择以下日期："
BAD_SLOT = "没有识别出时段，请选择或说“上午10点”“下午3点”。"
SLOT_TAKEN = "该时段已约满或不在办公时间（部分名额留给现场取号），请选择其他时段："
BAD_NAME = "请告诉我办事人的姓名（2到6个汉字），例如“张三”。"
BAD_PHONE = "手机号码格式不对，请输入11位手机号码，例如 13800000000。"
CORRECTING = "好的，请重新{what}。"
CHANGE_TIME_BUTTON, CHANGE_CENTRE_BUTTON = "改时间", "改服务中心"
BAD_CONFIRM = "请回复“确认”完成预约，或回复“不约了”放弃本次预约。"
SLOT_LOST = "抱歉，该时段刚刚被约满了，请重新预约其他时段。"
BOOKED = "预约成功！预约号：{code}\n事项：{matter}\n{where}\n请携带材料按时到达，凭预约号取号。未预约也可以现场取号办理。"
BOOKING_STOPPED = "好的，已退出预约，本次没有为您预约任何时段，刚才填写的信息也已清除。需要时可以随时说“我要预约”。"
NOTHING_TO_STOP = "好的。还有其他需要，随时问我。"
ACK = "好的。还有什么可以帮您？"
# Said once after a question interrupted the form; the form waits until the citizen goes on.
BOOKING_PAUSED = "刚才的预约还没完成（{done}），停在“{step}”这一步。要继续预约吗？"
CONTINUE_BUTTON, STOP_BUTTON = "继续预约", "不约了"
STEP_NAMES = {"booking_centre": "选择服务中心", "booking_date": "选择日期", "booking_slot": "选择时段",
              "booking_name": "填写姓名", "booking_phone": "填写手机号", "booking_confirmed": "确认预约信息"}
NOTHING_FILLED = "还没有填写信息"

# --- my bookings ---
NO_BOOKINGS = ("您目前没有待办理的预约。需要的话可以说“预约办事”。\n"
               "在其他渠道（如微信）约的，请发送预约号和预约手机号的后四位，如“查预约 K7M3QX2P 5678”。")
LOOKUP_NOT_FOUND = "没有找到该预约：请核对预约号和预约手机号的后四位。"
BOOKING_LINE = "预约号 {code}：{where}，办事人{name}，手机{phone}"
CONFIRM_CANCEL = "确定要取消预约号 {code}（{where}）吗？"
CANCELLED = "已取消预约号 {code} 的预约。"
CANCEL_GONE = "该预约已不存在或已取消。"
KEPT = "好的，预约号 {code} 的预约为您保留。"
NOTHING_TO_CANCEL = "您目前没有可以取消的预约。"
CANCEL_NOT_YOURS = ("在您的预约中没有找到这个预约号，请核对后再试。"
                    "在其他渠道（如微信）约的，请在原渠道取消，或拨打12345政务服务热线。")

# --- materials pre-check ---
WHICH_MATTER_FOR_CHECK = "请问您要办理哪个事项？例如：“结婚登记我带了身份证和户口本，够吗？”"

# --- understanding a message as parts (assistant/dialogue.py) ---
SHORT_GREETING = "您好！"
HANDOFF_BUTTON = "转人工"
REPHRASE_OR_PERSON = (
    "抱歉，我还是没能找到对应的办事指南。您可以换个说法（例如说出事项名称：“护照”“结婚登记”），"
    f"或点「转人工」由工作人员为您解答，也可以拨打{HOTLINE}政务服务热线。"
)
HANDOFF_WITH_QUESTION = "已为您转接人工服务，您的问题“{question}”已转给工作人员，请稍候。您也可以直接拨打" + HOTLINE + "政务服务热线。"
CORRECTED = "好的，已改为{value}。"
WHICH_IS_WRONG = "请问哪一项不对？点一下要改的那项，或直接说正确的内容（如“改成下周四”“手机号是139…”）。"
CORRECTION_BUTTONS = [("改服务中心", "服务中心不对"), ("改日期", "日期不对"), ("改时段", "时段不对"),
                      ("改姓名", "名字写错了"), ("改手机号", "手机号不对")]
