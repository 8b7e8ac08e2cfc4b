"""What people and scripts use: the CLI (``cli``), the Gradio app (``ui/``) and the LangChain
retriever (``langchain_retriever``), all over :class:`rag.service.Assistant`."""
