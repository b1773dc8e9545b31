"""The information resource catalog (政务信息资源目录): resources declared per system in the inventory, candidates
from what collection saw, the catalog report, and requests for shared data with their answering clock."""
